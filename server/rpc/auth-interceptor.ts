import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { authenticate } from "../auth/users.js";
import type { Db } from "../metadata/database.js";
import { kCaller } from "./caller.js";

/**
 * Every RPC needs `authorization: Bearer <token>`; the caller rides in the
 * context values. The HTTP front door (server/http/rpc-gate.ts) already
 * authenticates before the body is read and sets the caller; this stays so
 * that an RPC reached any other way fails closed.
 */
export function authInterceptor(db: Db): Interceptor {
  return (next) => async (req) => {
    if (req.contextValues.get(kCaller)) return next(req);
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new ConnectError("missing bearer token", Code.Unauthenticated);
    const caller = await authenticate(db, match[1]!);
    if (!caller) throw new ConnectError("invalid token", Code.Unauthenticated);
    req.contextValues.set(kCaller, caller);
    return next(req);
  };
}
