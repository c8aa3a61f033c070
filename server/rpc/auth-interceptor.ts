import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { authenticate } from "../auth/users.js";
import type { Db } from "../metadata/database.js";
import { kCaller } from "./caller.js";

/** Every RPC needs `authorization: Bearer <token>`; the caller rides in the context values. */
export function authInterceptor(db: Db): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new ConnectError("missing bearer token", Code.Unauthenticated);
    const caller = await authenticate(db, match[1]!);
    if (!caller) throw new ConnectError("invalid token", Code.Unauthenticated);
    req.contextValues.set(kCaller, caller);
    return next(req);
  };
}
