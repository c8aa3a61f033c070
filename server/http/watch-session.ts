import http2 from "node:http2";
import type { ConnectionLimits } from "./listen.js";

/**
 * Timeouts for one HTTP/2 connection. Its first stream must start within the
 * header timeout. Silent for the idle timeout, a session with no stream open
 * is closed; one with streams open (a long answer, a future WatchChanges) is
 * pinged instead, and cut only if the ping goes unanswered: liveness, not
 * idleness, decides.
 */
export function watchSession(session: http2.ServerHttp2Session, all: Set<http2.ServerHttp2Session>, limits: ConnectionLimits): void {
  all.add(session);
  let open = 0;
  const first = setTimeout(() => session.destroy(), limits.headerTimeoutMs);
  first.unref();
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    clearTimeout(first);
    open++;
    stream.once("close", () => open--);
  });
  // Errors of a session are its peer's; the server logs them ("sessionError").
  session.on("error", () => {});
  session.once("close", () => {
    clearTimeout(first);
    all.delete(session);
  });
  session.setTimeout(limits.idleTimeoutMs, () => {
    if (session.destroyed) return;
    const cut = setTimeout(() => session.destroy(), limits.pingTimeoutMs);
    cut.unref();
    if (open === 0) {
      session.close(() => clearTimeout(cut));
      return;
    }
    const sent = session.ping((err) => {
      clearTimeout(cut);
      if (err) session.destroy();
    });
    if (!sent) {
      clearTimeout(cut);
      session.destroy();
    }
  });
}
