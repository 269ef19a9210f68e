/**
 * The named stages of one decision. The router runs each stage through a DecisionStages, so
 * telemetry (spans, timers) can wrap them without living inside the router (house style 7).
 */
export const STAGES = ["parse", "template", "tokenize", "hash", "lookup", "pick"] as const;
export type StageName = (typeof STAGES)[number];

export interface DecisionStages {
  /** Runs `work` as stage `name`; a returned promise counts until it settles. */
  run<T>(name: StageName, work: () => T): T;
  /** A stage that ran elsewhere (a tokenizer thread), from `startMs` to `endMs` on performance.now()'s clock. */
  record?(name: StageName, startMs: number, endMs: number): void;
}

export const UNOBSERVED: DecisionStages = { run: (_name, work) => work() };
