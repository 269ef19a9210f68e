/**
 * Duration of one engine step from the cost model (DESIGN.md §7, replica-model.ts CostModel):
 *
 *   step = max(t0 if any prefill, decodeBase if any decode)              one forward pass, one overhead
 *        + Σ over prefill chunks  b·U + c·U·(C + U/2)                     C = tokens already in context
 *        + perKvToken · Σ over decodes (context + 1)                      KV read by each decode
 *
 * Why a max of the two fixed parts and a sum of the rest: a mixed step is a single forward pass,
 * so the fixed cost (weights read, kernel launches) is paid once, while prefill compute and decode
 * KV reads both scale with their own work. Alone, each part is exactly DESIGN's formula: a prompt
 * of U uncached tokens in one step costs t0 + b·U + c·U²/2 (38 ms at 1k, 116 ms at 4k), and
 * chunking only adds t0 per extra step, since Σ U_i·(C_i + U_i/2) = U²/2 over any split.
 */
import type { CostModel } from "./replica-model";

export interface PrefillChunk {
  /** Tokens already in the request's context before this chunk (cached or computed). */
  readonly context: number;
  /** New tokens computed in this step. */
  readonly tokens: number;
}

export function stepDurationMs(cost: CostModel, chunks: readonly PrefillChunk[], decodes: number, decodeKvTokens: number): number {
  let prefill = 0;
  for (const { context, tokens } of chunks) prefill += cost.prefillPerTokenMs * tokens + cost.prefillAttentionMs * tokens * (context + tokens / 2);
  const base = Math.max(chunks.length > 0 ? cost.prefillBaseMs : 0, decodes > 0 ? cost.decodeBaseMs : 0);
  return base + prefill + cost.decodePerKvTokenMs * decodeKvTokens;
}
