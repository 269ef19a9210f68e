/** Messages between the tokenizer pool (main thread) and its worker threads. */
import type { Outcome } from "../failure";
import type { BulkGateShare } from "./bulk-gate";
import type { BodyLimits } from "../request/parse-openai-body";
import type { Prompt } from "../request/prompt";
import type { ModelTokenizerConfig } from "./model-files";
import type { BlockKeyBytes } from "../prefix/block-keys";
import type { KeyedHead, KeySpec, ParsedRequest, PromptKeys } from "./prompt-keyer";
import type { SegmentCacheStats } from "./segment-cache";

export interface WorkerInit {
  readonly models: readonly ModelTokenizerConfig[];
  /** Every name a request may give (models and aliases) → its canonical model and chain root. */
  readonly catalog: Readonly<Record<string, CatalogEntry>>;
  /** The limits bodies are parsed with (the thread parses the bodies of body jobs, see WorkerJob). */
  readonly limits: BodyLimits;
  readonly segmentCacheBytes: number;
  readonly chainCacheBytes: number;
  readonly bulkGate: BulkGateShare;
  /** Where the bulk encoder process listens (bulk-encoder.ts); null: bulk batches are encoded in the thread. */
  readonly bulkSocket: string | null;
  /** The OS nice value this thread lowers itself to once loaded (the large-prompt lane); 0: none. */
  readonly nice: number;
}

export interface CatalogEntry {
  readonly model: string;
  readonly root: Uint8Array;
}

/**
 * A job carries the parsed prompt (a structured clone) with its model and spec; or a body's bytes,
 * which the thread parses itself (a copy of the bytes costs the event loop far less than parsing or
 * cloning megabytes), resolving the model it names through WorkerInit.catalog (`model` null, and
 * the spec's root comes from the catalog).
 */
export type WorkerJob = (
  | { readonly id: number; readonly model: string; readonly prompt: Prompt; readonly spec: KeySpec }
  | { readonly id: number; readonly model: null; readonly prompt: { readonly path: string; readonly body: Uint8Array }; readonly spec: Omit<KeySpec, "root"> }
) & {
  /** The pool answers the job's heads (a "head" reply, then a HeadVerdict): PromptKeyer's HeadProbe. */
  readonly probes: boolean;
};

/** The answer to a job's "head" reply: true when some worker holds all of it (keying goes on). */
export interface HeadVerdict {
  readonly verdict: "head";
  readonly id: number;
  readonly more: boolean;
}

/** Heap in use after a full collection (the collection only when node runs with --expose-gc). */
export interface WorkerHeapProbe {
  readonly probe: "heap";
  readonly id: number;
}

export type WorkerReply =
  /** Loaded; the thread's tid and the nice value it runs at (thread-priority.ts), null where unknown. */
  | { readonly kind: "ready"; readonly tid: number | null; readonly nice: number | null }
  | { readonly kind: "failed"; readonly error: string }
  | { readonly kind: "done"; readonly id: number; readonly result: Outcome<PromptKeys>; readonly parsed: ParsedRequest | null; readonly stats: SegmentCacheStats }
  | { readonly kind: "heap"; readonly id: number; readonly heapUsed: number }
  | { readonly kind: "head"; readonly id: number; readonly head: KeyedHead }
  /** A cached prefix of the job's prompt, before the rest is encoded (HeadProbe.prefix); no verdict follows. */
  | { readonly kind: "prefix"; readonly id: number; readonly head: KeyedHead }
  /** After a "done" whose keys are not `complete`: the whole prompt's keys (PromptKeys.rest), null when not keyed. */
  | { readonly kind: "rest"; readonly id: number; readonly keys: BlockKeyBytes | null };
