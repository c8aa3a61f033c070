/**
 * A dependency the server needs at start (the object store, PostgreSQL) did
 * not answer in time or could not be reached. `drive server` exits 7 on it
 * (README, "Server exit codes"), as the CLI does when it cannot reach a server.
 */
export class DependencyUnavailableError extends Error {
  override readonly name = "DependencyUnavailableError";
}

/**
 * Runs one start-up step against a dependency, bounded by `ms`. When time
 * runs out, `cancel` is called to cut what is in flight, and the step fails
 * naming `what` and the step it was on (`step()` may change as it goes).
 */
export async function withStartupDeadline<T>(
  what: string,
  ms: number,
  step: () => string,
  run: () => Promise<T>,
  cancel: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new DependencyUnavailableError(`${what} did not answer within ${formatMs(ms)} (${step()}); check it, or raise --startup-timeout`));
      cancel();
    }, ms);
  });
  const running = run();
  running.catch(() => {}); // after a timeout its failure is expected and no longer anyone's
  try {
    return await Promise.race([running, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
