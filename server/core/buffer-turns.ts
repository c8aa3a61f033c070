import type { FileHandle } from "node:fs/promises";

/** What BufferTurns writes to: a socket, an HTTP request or response. */
export interface ChunkSink {
  write(chunk: Buffer, done: (err?: Error | null) => void): boolean;
  readonly destroyed?: boolean;
}

/**
 * Sends file ranges to a sink through two buffers that take turns: one is
 * read from disk while the other drains to the socket. Nothing is allocated
 * per chunk; fresh buffers for every read kept the garbage collector busy
 * for over half a second per GiB moved. Both the client's part PUTs and the
 * local store's GETs use it.
 */
export class BufferTurns {
  private readonly buffers: [Buffer, Buffer];
  private readonly written: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  private turn: 0 | 1 = 0;

  constructor(
    private readonly out: ChunkSink,
    chunkSize: number,
  ) {
    this.buffers = [Buffer.allocUnsafe(chunkSize), Buffer.allocUnsafe(chunkSize)];
  }

  /**
   * Sends bytes [from, to) of an open file; returns how many it sent, fewer
   * when the file ends early. `onChunk` sees each chunk before it goes out.
   */
  async send(fh: FileHandle, from: number, to: number, onChunk?: (chunk: Buffer) => void): Promise<number> {
    let pos = from;
    while (pos < to) {
      const t = this.turn;
      const buffer = this.buffers[t];
      await this.written[t]; // this buffer's last write has left it
      const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.length, to - pos), pos);
      if (bytesRead === 0) break;
      if (this.out.destroyed) throw new Error("the connection closed mid-transfer");
      const chunk = buffer.subarray(0, bytesRead);
      onChunk?.(chunk);
      this.written[t] = new Promise<void>((resolve, reject) => this.out.write(chunk, (err) => (err ? reject(err) : resolve())));
      this.turn = t === 0 ? 1 : 0;
      pos += bytesRead;
    }
    return pos - from;
  }

  /** Resolves when every chunk has been handed to the socket. */
  async flush(): Promise<void> {
    await Promise.all(this.written);
  }
}
