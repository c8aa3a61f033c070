/**
 * A loop's alarm clock: callers kick it (now, or after a debounce), the loop
 * waits for the earliest kick or its own deadline. A kick that comes while
 * the loop is busy is kept, so no hint is lost between two waits.
 */
export class Wake {
  private due: number | undefined;
  private resolve: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** Wakes the loop in delayMs (0: at once), unless an earlier wake is already due. */
  kick(delayMs = 0): void {
    const at = Date.now() + delayMs;
    if (this.due !== undefined && this.due <= at) return;
    this.due = at;
    if (this.resolve) this.arm();
  }

  /** Resolves at the earliest kick, after timeoutMs (undefined: no timeout), or when signal aborts. */
  wait(timeoutMs: number | undefined, signal: AbortSignal): Promise<void> {
    if (timeoutMs !== undefined) this.kick(Math.max(0, timeoutMs));
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const onAbort = () => this.fire();
      signal.addEventListener("abort", onAbort, { once: true });
      this.resolve = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      this.arm();
    });
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.due === undefined) return;
    this.timer = setTimeout(() => this.fire(), Math.max(0, this.due - Date.now()));
  }

  private fire(): void {
    clearTimeout(this.timer);
    this.due = undefined;
    const r = this.resolve;
    this.resolve = undefined;
    r?.();
  }
}
