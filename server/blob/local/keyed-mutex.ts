/**
 * Serialises async sections that share a name. The local store is owned by a
 * single server process, so an in-memory queue is enough to keep a part's
 * rename and clean-up, or an upload's completion, from interleaving.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(name, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      // Forget the name once nobody queued behind us, so the map stays small.
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    }
  }
}
