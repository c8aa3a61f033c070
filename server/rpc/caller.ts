import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Caller } from "../auth/users.js";

/** The authenticated caller, set by the auth interceptor for every RPC. */
export const kCaller = createContextKey<Caller | null>(null, { description: "authenticated caller" });

export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(kCaller);
  // Unreachable while the auth interceptor is installed; fail closed if it is not.
  if (!caller) throw new ConnectError("not authenticated", Code.Unauthenticated);
  return caller;
}

/** Scheme, host and port this request reached us on, for URLs we serve ourselves. */
export function originOf(ctx: HandlerContext, publicUrl: string | null): string {
  return publicUrl ?? new URL(ctx.url).origin;
}
