/**
 * What rendering a chat template costs per message, learned per model from this thread's own
 * renders, so a render that cannot finish in the time a request has left is not started. The
 * template engine cannot be interrupted: a 10,000-message chat holds a tokenizer thread for over a
 * second (Qwen3's template, measured on 2 busy cores), and every request queued on that thread
 * misses its deadline too. Renders of at least MIN_MESSAGES messages teach the rate (an
 * exponentially weighted mean of ms per message, weight WEIGHT for the newest); fewer messages
 * cost mostly a fixed overhead and teach nothing. Before anything is learned every render runs.
 */

const MIN_MESSAGES = 64;
const WEIGHT = 0.2;

export class RenderCost {
  private readonly msPerMessage = new Map<string, number>();

  /** A render of `messages` messages took `ms`. */
  observe(model: string, messages: number, ms: number): void {
    if (messages < MIN_MESSAGES) return;
    const rate = ms / messages;
    const known = this.msPerMessage.get(model);
    this.msPerMessage.set(model, known === undefined ? rate : known + WEIGHT * (rate - known));
  }

  /** Predicted ms to render `messages` messages; 0 while nothing is known. */
  predictMs(model: string, messages: number): number {
    return (this.msPerMessage.get(model) ?? 0) * messages;
  }
}
