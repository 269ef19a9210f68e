/**
 * Runs tasks that share a key one after another, tasks with different keys concurrently.
 * Ingest applies each worker's batches and resyncs in arrival order with it (ingest-service.ts).
 * Not for the routing path: a request must never wait behind another's lookup (the speculation
 * overlay, routing/speculation-overlay.ts, gives a burst on a new prefix its own picks instead).
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
