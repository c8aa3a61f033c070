import type { FileHandle } from "node:fs/promises";

/** What BufferTurns writes to: a socket, an HTTP request or response. */
export interface ChunkSink {
  write(chunk: Buffer, done: (err?: Error | null) => void): boolean;
  readonly destroyed?: boolean;
  /** "close": the far end went away, or the exchange ended; a write still pending then never completes. */
  once(event: "close", listener: () => void): unknown;
}

/**
 * Sends file ranges to a sink through two buffers that take turns: one is
 * read from disk while the other drains to the socket. Nothing is allocated
 * per chunk; fresh buffers for every read kept the garbage collector busy
 * for over half a second per GiB moved. Both the client's part PUTs and the
 * local store's GETs use it.
 *
 * A peer can go away at any moment, with one write or two in flight. The
 * write promises therefore never reject: the first failure is kept and
 * thrown by the next send() or flush(), so it reaches the caller and can
 * never be an unhandled rejection (which ends the process). A close with
 * writes pending counts as a failure too, since their callbacks may never
 * come, and nothing waits forever on them.
 */
export class BufferTurns {
  private readonly buffers: [Buffer, Buffer];
  private readonly written: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  private turn: 0 | 1 = 0;
  private pending = 0;
  private failure: Error | null = null;
  private closed = false;
  private readonly onClose: Promise<void>;

  constructor(
    private readonly out: ChunkSink,
    chunkSize: number,
  ) {
    this.buffers = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];
    this.onClose = new Promise<void>((resolve) => {
      const closed = () => {
        this.closed = true;
        resolve();
      };
      // A sink that failed before we came (a refused connection) closed already.
      if (out.destroyed) closed();
      else out.once("close", closed);
    });
  }

  /**
   * Sends bytes [from, to) of an open file; returns how many it sent, fewer
   * when the file ends early. `onChunk` sees each chunk before it goes out.
   * Rejects with the sink's error, or ERR_STREAM_PREMATURE_CLOSE when it closed.
   */
  async send(fh: FileHandle, from: number, to: number, onChunk?: (chunk: Buffer) => void): Promise<number> {
    let pos = from;
    while (pos < to) {
      const t = this.turn;
      const buffer = this.buffers[t];
      await Promise.race([this.written[t], this.onClose]); // this buffer's last write has left it
      this.check(true);
      const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.length, to - pos), pos);
      if (bytesRead === 0) break;
      this.check(true);
      const chunk = buffer.subarray(0, bytesRead);
      onChunk?.(chunk);
      this.written[t] = this.write(chunk);
      this.turn = t === 0 ? 1 : 0;
      pos += bytesRead;
    }
    return pos - from;
  }

  /** Resolves when every chunk has been handed to the socket; rejects as send() does. */
  async flush(): Promise<void> {
    await Promise.race([Promise.all(this.written), this.onClose]);
    this.check(false);
  }

  private write(chunk: Buffer): Promise<void> {
    this.pending++;
    return new Promise<void>((resolve) => {
      let settled = false;
      const done = (err?: Error | null) => {
        if (settled) return;
        settled = true;
        this.pending--;
        if (err) this.failure ??= err;
        resolve();
      };
      try {
        this.out.write(chunk, done);
      } catch (err) {
        done(err as Error);
      }
    });
  }

  /** Throws the failure so far; `more`: bytes are still to be written, so a closed sink is one too. */
  private check(more: boolean): void {
    if (this.failure) throw this.failure;
    const gone = this.closed || (more && this.out.destroyed);
    if (gone && (more || this.pending > 0)) {
      throw Object.assign(new Error("the connection closed mid-transfer"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
    }
  }
}
