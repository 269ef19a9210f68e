/** Messages between the tokenizer pool (main thread) and its worker threads. */
import type { Outcome } from "../failure";
import type { BulkGateShare } from "./bulk-gate";
import type { BodyLimits } from "../request/parse-openai-body";
import type { Prompt } from "../request/prompt";
import type { ModelTokenizerConfig } from "./model-files";
import type { KeySpec, PromptKeys } from "./prompt-keyer";
import type { SegmentCacheStats } from "./segment-cache";

export interface WorkerInit {
  readonly models: readonly ModelTokenizerConfig[];
  /** The limits the router parsed the body with (the thread parses it again, see WorkerJob). */
  readonly limits: BodyLimits;
  readonly segmentCacheBytes: number;
  readonly chainCacheBytes: number;
  readonly bulkGate: BulkGateShare;
}

/**
 * A job carries the parsed prompt (a structured clone), or for a large body the bytes it was parsed
 * from, which the thread parses again: a copy of the bytes costs the event loop far less than
 * cloning megabytes of parsed strings.
 */
export interface WorkerJob {
  readonly id: number;
  readonly model: string;
  readonly prompt: Prompt | { readonly path: string; readonly body: Uint8Array };
  readonly spec: KeySpec;
}

/** Heap in use after a full collection (the collection only when node runs with --expose-gc). */
export interface WorkerHeapProbe {
  readonly probe: "heap";
  readonly id: number;
}

export type WorkerReply =
  | { readonly kind: "ready" }
  | { readonly kind: "failed"; readonly error: string }
  | { readonly kind: "done"; readonly id: number; readonly result: Outcome<PromptKeys>; readonly stats: SegmentCacheStats }
  | { readonly kind: "heap"; readonly id: number; readonly heapUsed: number };
