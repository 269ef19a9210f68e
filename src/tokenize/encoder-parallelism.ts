/**
 * Whether Hugging Face's Rust encoder parallelises inside one call (rayon, over every core): its
 * TOKENIZERS_PARALLELISM environment variable, read on each call.
 *
 * In the router's process it is off: parallelism there comes from the tokenizer threads and
 * libuv's four encode threads (a decision's batches go out four at a time), and a rayon pool
 * inside each call only adds a thread hop to the short texts decisions encode — a chat's new
 * turn, the 2,048-character head of a new prompt — on the same cores: one short turn 98 → 64 µs
 * from the call to its ids, a batch of three 200 → 124 µs (a micro-run on 2 cores). The bulk
 * encoder process (bulk-encoder.ts) encodes the rest of long prompts, in large batches one at a
 * time, where spreading a batch over the cores pays: it keeps rayon on. An operator's own
 * setting of the variable is kept for both.
 */
export interface EncoderParallelism {
  /** The value for the router's process (tokenizer threads). */
  readonly router: string;
  /** The value for the bulk encoder process. */
  readonly bulk: string;
}

export const PARALLELISM_VARIABLE = "TOKENIZERS_PARALLELISM";

/** The operator's setting: the environment as this module found it, before a pool set it. */
const OPERATOR_SETTING = process.env[PARALLELISM_VARIABLE];

export function encoderParallelism(operator: string | undefined = OPERATOR_SETTING): EncoderParallelism {
  return operator === undefined ? { router: "false", bulk: "true" } : { router: operator, bulk: operator };
}
