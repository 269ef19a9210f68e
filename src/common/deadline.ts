/** Races a promise against a timer; the loser's result is ignored (and its rejection swallowed). */
export type DeadlineResult<T> = { readonly done: true; readonly value: T } | { readonly done: false; readonly error?: unknown };

export function withDeadline<T>(work: Promise<T>, ms: number): Promise<DeadlineResult<T>> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ done: false }), ms);
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
