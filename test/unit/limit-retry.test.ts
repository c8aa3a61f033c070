import { once } from "node:events";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserService } from "../../gen/drive/v1/user_pb.js";
import { connectDrive } from "../../cli/rpc/drive-client.js";
import { limitExceeded } from "../../server/errors.js";
import { toConnectError } from "../../server/rpc/error-interceptor.js";

/** The client's retry policy against a real HTTP/2 Connect server in this process. */
describe("retries and typed reasons", () => {
  let server: http2.Http2Server;
  let url: string;
  let calls = 0;
  let answer: () => Error;

  beforeAll(async () => {
    const handler = connectNodeAdapter({
      routes: (router) =>
        router.service(UserService, {
          whoAmI() {
            calls++;
            throw toConnectError(answer());
          },
          createUser() {
            throw new ConnectError("no", Code.Unimplemented);
          },
        }),
    });
    server = http2.createServer(handler);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const call = async () => {
    calls = 0;
    const client = connectDrive({ server: url, token: "t" }, { retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 2 } });
    try {
      return await client.users.whoAmI({}).then(() => null, (err: unknown) => err);
    } finally {
      client.close();
    }
  };

  it("does not retry a limit the server names: it stays reached", async () => {
    answer = () => limitExceeded("resource_exhausted", "open_uploads", 100, "at most 100 open uploads");
    const err = await call();
    expect(err).toMatchObject({ code: Code.ResourceExhausted });
    expect(calls).toBe(1);
  });

  it("still retries a plain ResourceExhausted", async () => {
    answer = () => new ConnectError("busy", Code.ResourceExhausted);
    await call();
    expect(calls).toBe(4);
  });
});
