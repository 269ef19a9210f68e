/** The chat bodies of decision.bench.ts, shared by its client thread (which sends them) and its main thread (which confirms their prefixes). */

/** The turns between a warm prompt's system prompt and its new question. */
export const HISTORY = ["What does this cover?", "It covers the material above in detail."];

/** A chat completions body: system prompt, alternating history, the user's turn (and tools). */
export function chat(system: string, history: readonly string[], user: string, tools?: unknown[]): string {
  const messages = [{ role: "system", content: system }];
  history.forEach((h, i) => messages.push({ role: i % 2 ? "assistant" : "user", content: h }));
  messages.push({ role: "user", content: user });
  return JSON.stringify({ model: "qwen3", messages, ...(tools ? { tools } : {}) });
}
