/**
 * fast-check generators for the fuzz runs: request bodies (OpenAI chat / completion bodies, valid,
 * odd, mutated, deeply nested, huge, invalid UTF-8, random bytes), ext_proc message sequences
 * (every request and response message in random orders, duplicated or missing phases, any body
 * mode, ending in a half-close or a cancel) and ingest batches (valid, mutated and random bytes).
 */
import fc from "fast-check";
import type { BodySendMode, ProcessingRequest } from "../../../src/extproc/messages";

const PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/", "", "/v1/chat/completions?x=1", "/v1/completions/../chat/completions"];
const MODELS = ["qwen3", "llama3", "unknown-model", "", "qwen3\r\nx-evil: 1", "\u010d\u010a", "m".repeat(1000)];
const ROLES = ["system", "user", "assistant", "tool", "developer", "", "moderator"];

const text = fc.oneof(
  { weight: 12, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 100 }) },
  { weight: 1, arbitrary: fc.constantFrom("<|im_start|>", "<|im_end|>", "<think>", "<|endoftext|>", "{{ raise_exception('x') }}", "{% for %}", "\u0000", "\ud800") },
  { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => "x".repeat(n)) },
);

const jsonLeaf: fc.Arbitrary<unknown> = fc.oneof(fc.constant(null), fc.boolean(), fc.double(), fc.integer(), text);
const anyJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, jsonLeaf, fc.array(tie("value"), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 10 }), tie("value"), { maxKeys: 4 })),
})).value;

const contentPart = fc.oneof(
  fc.record({ type: fc.constant("text"), text }),
  fc.record({ type: fc.constantFrom("image_url", "input_audio", "video", "file", "refusal"), image_url: fc.record({ url: text }) }),
  anyJson,
);
const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom(...ROLES), anyJson),
    content: fc.oneof(text, fc.array(contentPart, { maxLength: 3 }), fc.constant(null), anyJson),
    name: text,
    tool_calls: fc.array(fc.record({ id: text, type: fc.constant("function"), function: fc.record({ name: text, arguments: fc.oneof(text, anyJson) }) }), { maxLength: 2 }),
    tool_call_id: text,
  },
  { requiredKeys: ["role"] },
);
const tool = fc.record({ type: fc.constant("function"), function: fc.record({ name: text, description: text, parameters: anyJson }) });

const chatBody = fc.record(
  {
    model: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...MODELS) }, { weight: 1, arbitrary: anyJson }),
    messages: fc.oneof({ weight: 8, arbitrary: fc.array(message, { maxLength: 6 }) }, { weight: 1, arbitrary: anyJson }),
    tools: fc.array(tool, { maxLength: 3 }),
    stream: fc.boolean(),
    max_tokens: fc.oneof(fc.integer(), anyJson),
    chat_template_kwargs: fc.dictionary(fc.string({ maxLength: 10 }), anyJson, { maxKeys: 3 }),
    add_generation_prompt: fc.boolean(),
    continue_final_message: fc.boolean(),
    documents: fc.array(anyJson, { maxLength: 2 }),
  },
  { requiredKeys: ["model", "messages"] },
);
const completionBody = fc.record(
  {
    model: fc.constantFrom(...MODELS),
    prompt: fc.oneof(text, fc.array(text, { maxLength: 3 }), fc.array(fc.integer({ min: -5, max: 200_000 }), { maxLength: 300 }), fc.array(fc.array(fc.nat(), { maxLength: 5 }), { maxLength: 3 }), anyJson),
    max_tokens: fc.integer(),
  },
  { requiredKeys: ["model", "prompt"] },
);

/** A JSON text that nests `depth` arrays or objects. */
const deepNesting = fc.tuple(fc.integer({ min: 10, max: 20_000 }), fc.boolean()).map(([depth, arrays]) =>
  arrays ? `{"model":"qwen3","messages":${"[".repeat(depth)}${"]".repeat(depth)}}` : `{"model":"qwen3","messages":[{"role":"user","content":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}]}`,
);

/** Bytes of a valid-looking body with a few bytes flipped, cut or duplicated. */
const mutate = (bytes: Buffer): fc.Arbitrary<Buffer> =>
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("flip", "cut", "dup", "insert")), { minLength: 1, maxLength: 4 }).map((edits) => {
    let b = Buffer.from(bytes);
    for (const [at, byte, op] of edits) {
      if (b.length === 0) break;
      const i = at % b.length;
      if (op === "flip") b[i] = byte;
      else if (op === "cut") b = b.subarray(0, i);
      else if (op === "dup") b = Buffer.concat([b.subarray(0, i), b.subarray(i), b.subarray(i)]);
      else b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
    }
    return b;
  });

const validBody = fc.oneof(chatBody, completionBody).map((o) => Buffer.from(JSON.stringify(o)));

export interface FuzzBody {
  readonly path: string;
  readonly body: Buffer;
}

export const body: fc.Arbitrary<FuzzBody> = fc.record({
  path: fc.oneof({ weight: 8, arbitrary: fc.constantFrom("/v1/chat/completions", "/v1/completions") }, { weight: 1, arbitrary: fc.constantFrom(...PATHS) }),
  body: fc.oneof(
    { weight: 10, arbitrary: validBody },
    { weight: 4, arbitrary: validBody.chain(mutate) },
    { weight: 1, arbitrary: deepNesting.map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.tuple(text, fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([t, bad]) => Buffer.concat([Buffer.from(`{"model":"qwen3","messages":[{"role":"user","content":"${t.replace(/["\\]/g, "")}`), Buffer.from(bad).map((x) => x | 0x80), Buffer.from('"}]}')])) },
    { weight: 1, arbitrary: anyJson.map((j) => Buffer.from(JSON.stringify(j) ?? "null")) },
  ),
});

/** One client action on an ext_proc stream. */
export type StreamStep =
  | { readonly kind: "message"; readonly message: ProcessingRequest }
  | { readonly kind: "pause" };

export interface StreamCase {
  readonly steps: readonly StreamStep[];
  /** How the client leaves: half-close (as Envoy at the end of an exchange) or reset. */
  readonly end: "half-close" | "cancel";
  /** True when the sequence is one Envoy sends (headers, then the body to its end): it must get a routing answer. */
  readonly wellFormed: boolean;
}

const MODES: (BodySendMode | undefined)[] = ["BUFFERED", "FULL_DUPLEX_STREAMED", "STREAMED", "BUFFERED_PARTIAL", "NONE", undefined];

const headerList = (path: string, extra: [string, string][]) => ({
  headers: [
    [":method", "POST"],
    [":path", path],
    [":authority", "router.fuzz"],
    ["content-type", "application/json"],
    ...extra,
  ].map(([key, v]) => ({ key, raw_value: Buffer.from(v, "latin1") })),
});
const extraHeaders = fc.array(fc.tuple(fc.constantFrom("x-request-id", "x-gateway-destination-endpoint", "x-prefix-router-worker", "content-length", ":path", "x-other"), fc.string({ maxLength: 300 })), { maxLength: 3 });

const requestHeaders = fc.record({ path: fc.constantFrom(...PATHS), eos: fc.boolean(), mode: fc.constantFrom(...MODES), extra: extraHeaders }).map(
  ({ path, eos, mode, extra }): ProcessingRequest => ({
    request_headers: { headers: headerList(path, extra), end_of_stream: eos },
    ...(mode ? { protocol_config: { request_body_mode: mode, response_body_mode: "NONE" } } : {}),
  }),
);
const bodyChunk = fc.record({ bytes: fc.uint8Array({ maxLength: 300 }), eos: fc.boolean() }).map(({ bytes, eos }): ProcessingRequest => ({ request_body: { body: Buffer.from(bytes), end_of_stream: eos } }));
const otherMessage: fc.Arbitrary<ProcessingRequest> = fc.oneof(
  fc.constant<ProcessingRequest>({ request_trailers: { trailers: { headers: [] } } }),
  fc.integer({ min: 0, max: 999 }).map((s): ProcessingRequest => ({ response_headers: { headers: { headers: [{ key: ":status", raw_value: Buffer.from(String(s)) }] }, end_of_stream: false } })),
  fc.uint8Array({ maxLength: 100 }).map((b): ProcessingRequest => ({ response_body: { body: Buffer.from(b), end_of_stream: true } })),
  fc.constant<ProcessingRequest>({ response_trailers: { trailers: { headers: [] } } }),
  fc.constant<ProcessingRequest>({ observability_mode: true, request_body: { body: Buffer.from("{}"), end_of_stream: true } }),
  fc.constant<ProcessingRequest>({}),
);

/** Headers then the body (one message, or chunks), as Envoy sends them, possibly followed by response messages. */
const wellFormed: fc.Arbitrary<StreamCase> = fc
  .record({ b: body, mode: fc.constantFrom<BodySendMode>("BUFFERED", "FULL_DUPLEX_STREAMED"), chunk: fc.integer({ min: 512, max: 70_000 }), tail: fc.array(otherMessage, { maxLength: 2 }), end: fc.constantFrom<"half-close" | "cancel">("half-close", "half-close", "cancel") })
  .map(({ b, mode, chunk, tail, end }) => {
    const steps: StreamStep[] = [{ kind: "message", message: { request_headers: { headers: headerList(b.path, []), end_of_stream: false }, protocol_config: { request_body_mode: mode, response_body_mode: "NONE" } } }];
    const size = mode === "BUFFERED" ? Math.max(1, b.body.length) : chunk;
    for (let off = 0; off === 0 || off < b.body.length; off += size) {
      steps.push({ kind: "message", message: { request_body: { body: b.body.subarray(off, off + size), end_of_stream: off + size >= b.body.length } } });
    }
    return { steps: [...steps, ...tail.map((message) => ({ kind: "message" as const, message }))], end, wellFormed: end === "half-close" };
  });

/** Anything: messages of every kind in any order, duplicated or missing, with pauses. */
const chaotic: fc.Arbitrary<StreamCase> = fc
  .record({
    steps: fc.array(
      fc.oneof<fc.Arbitrary<StreamStep>[]>(
        requestHeaders.map((message) => ({ kind: "message", message })),
        bodyChunk.map((message) => ({ kind: "message", message })),
        body.map(({ body: b }) => ({ kind: "message", message: { request_body: { body: b, end_of_stream: true } } })),
        otherMessage.map((message) => ({ kind: "message", message })),
        fc.constant({ kind: "pause" }),
      ),
      { maxLength: 8 },
    ),
    end: fc.constantFrom<"half-close" | "cancel">("half-close", "cancel"),
  })
  .map(({ steps, end }) => ({ steps, end, wellFormed: false }));

export const streamCase: fc.Arbitrary<StreamCase> = fc.oneof({ weight: 1, arbitrary: wellFormed }, { weight: 1, arbitrary: chaotic });
