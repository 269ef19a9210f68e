/**
 * Runs tasks that share a key one after another, tasks with different keys concurrently.
 * The router serializes lookup → decide → record per first block key, so a burst of requests
 * with one new prefix sees each other's speculative entries instead of all missing at once.
 */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with a task queued or running (for tests and metrics). */
  get pending(): number {
    return this.tails.size;
  }
}
