import type http2 from "node:http2";
import type { ConnectionLimits } from "./listen.js";

/**
 * Timeouts for one HTTP/2 connection. Its first stream must start within the
 * header timeout. A session with no stream open for the idle timeout is
 * closed. One with streams open (a long answer, a future WatchChanges) is
 * pinged instead, and cut only if a ping goes unanswered: liveness, not
 * idleness, decides.
 *
 * Node's own Http2Session.setTimeout is not used: it fires once, and pings
 * and natively written data do not re-arm it.
 */
export function watchSession(session: http2.ServerHttp2Session, all: Set<http2.ServerHttp2Session>, limits: ConnectionLimits): void {
  all.add(session);
  let open = 0;
  let lastChange = Date.now();
  let pinging = false;
  const first = setTimeout(() => session.destroy(), limits.headerTimeoutMs);
  first.unref();
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    clearTimeout(first);
    open++;
    lastChange = Date.now();
    stream.once("close", () => {
      open--;
      lastChange = Date.now();
    });
  });
  // Errors of a session are its peer's; the server logs them ("sessionError").
  session.on("error", () => {});

  const check = setInterval(() => {
    if (session.destroyed || session.closed) return;
    if (open === 0) {
      if (Date.now() - lastChange < limits.idleTimeoutMs) return;
      const cut = setTimeout(() => session.destroy(), limits.pingTimeoutMs);
      cut.unref();
      session.close(() => clearTimeout(cut));
      return;
    }
    if (pinging) return;
    pinging = true;
    const cut = setTimeout(() => session.destroy(), limits.pingTimeoutMs);
    cut.unref();
    const sent = session.ping((err) => {
      pinging = false;
      clearTimeout(cut);
      if (err && !session.destroyed) session.destroy();
    });
    if (!sent) session.destroy();
  }, Math.max(25, Math.floor(limits.idleTimeoutMs / 2)));
  check.unref();

  session.once("close", () => {
    clearTimeout(first);
    clearInterval(check);
    all.delete(session);
  });
}
