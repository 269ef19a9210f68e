/**
 * The closed set of reasons a request is routed by the fallback policy instead of by prefix.
 * Hot-path failures are values of this type, never exceptions (house style 13); the extproc
 * layer turns them into the `x-prefix-router-reason` debug header.
 */
export const FAILURE_CODES = [
  "no-body", // the request carries no body (GET /v1/models, health checks)
  "unsupported-path", // a path we do not parse (embeddings, admin, …)
  "body-too-large", // over limits.maxBodyBytes
  "body-buffer-full", // all ext_proc streams together hold extProc.maxBufferedBodyBytes of bodies
  "invalid-utf8", // body bytes are not valid UTF-8
  "invalid-json", // body is not JSON
  "invalid-request", // JSON, but not a valid OpenAI completions/chat request
  "too-many-messages", // over limits.maxMessages
  "prompt-too-long", // over limits.maxPromptChars or limits.maxPromptTokens
  "no-model", // the body names no model
  "unknown-model", // the model is not in the config
  "template-error", // the chat template failed to render
  "tokenize-error", // the tokenizer failed
  "decision-timeout", // tokenizing/looking up took longer than routing.decisionTimeoutMs
  "store-error", // the cache index failed or timed out
  "body-mode-unsupported", // Envoy sent the body in a mode we do not route on
] as const;

export type FailureCode = (typeof FAILURE_CODES)[number];

export interface Failure {
  readonly code: FailureCode;
  /** Human-readable detail for logs; never sent to clients verbatim beyond a debug header. */
  readonly detail: string;
}

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: Failure };

export function ok<T>(value: T): Outcome<T> {
  return { ok: true, value };
}

export function fail(code: FailureCode, detail: string): { ok: false; failure: Failure } {
  return { ok: false, failure: { code, detail } };
}

/** The body names a model the config does not (said by the router, or by a thread that parsed the body). */
export const UNKNOWN_MODEL: Failure = Object.freeze({ code: "unknown-model", detail: "the requested model is not configured" });
