/** Races a promise against a timer; the loser's result is ignored (and its rejection swallowed). */
export type DeadlineResult<T> = { readonly done: true; readonly value: T } | { readonly done: false; readonly error?: unknown };

/** Node's timers hold at most 2^31 − 1 ms; a longer (or infinite) deadline never fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function withDeadline<T>(work: Promise<T>, ms: number): Promise<DeadlineResult<T>> {
  return new Promise((resolve) => {
    const timer = ms > MAX_TIMER_MS ? undefined : setTimeout(() => resolve({ done: false }), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve({ done: true, value });
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve({ done: false, error });
      },
    );
  });
}
