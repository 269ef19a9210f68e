/**
 * The bulk encoder process against the real tokenizers: the same ids as encoding in process, its
 * threads at the configured nice value (Linux), and nothing lost when it dies.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LLAMA3_TOKENIZER, QWEN3_TOKENIZER, realPrompts } from "../../e2e/support/router-fixture";
import { BulkEncoderClient, BulkEncoderProcess } from "./bulk-encoder";
import { loadModelFiles } from "./model-files";
import { SegmentCache } from "./segment-cache";
import { SegmentedEncoder } from "./segmented-encoder";
import { huggingFaceEncoder } from "./token-encoder";

const MODELS = [
  { name: "qwen3", tokenizer: QWEN3_TOKENIZER },
  { name: "llama3", tokenizer: LLAMA3_TOKENIZER },
];

const closing: { close(): void }[] = [];
afterEach(() => closing.splice(0).forEach((c) => c.close()));

/** Polls `done` (called once per try) until it holds, for up to 10 s. */
const until = async (done: () => boolean) => {
  for (let i = 0; i < 400; i++) {
    if (done()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("timed out");
};

/** A started process and a connected client (the first encode() answers null and connects). */
async function started(nice = 7, restartMs?: number, models = MODELS, env: Record<string, string> = {}) {
  const bulk = BulkEncoderProcess.start(models, nice, env, restartMs);
  const client = new BulkEncoderClient(bulk.socket, 20);
  closing.push(client, bulk);
  let first: Promise<Uint32Array[]> | null = null;
  await until(() => (first = client.encode(0, ["hello world"])) !== null);
  expect((await first!)[0].length).toBe(2);
  return { bulk, client };
}

/** Nice value of every thread of a process (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((t) => Number(readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8").split(") ")[1].split(" ")[16]));
}

const texts = () => realPrompts().slice(0, 40);

describe("bulk encoder process", () => {
  it("runs with the environment it was given over the router's", async () => {
    const { bulk } = await started(7, undefined, MODELS, { TOKENIZERS_PARALLELISM: "true" });
    const env = readFileSync(`/proc/${bulk.pid}/environ`, "utf8").split("\0");
    expect(env).toContain("TOKENIZERS_PARALLELISM=true");
    expect(env).toContain(`PATH=${process.env.PATH}`);
  }, 30_000);

  it("encodes as the tokenizer does in process, for each model", async () => {
    const { client } = await started();
    for (const [index, model] of MODELS.entries()) {
      const local = huggingFaceEncoder(loadModelFiles(model).tokenizer as never);
      const [remote, here] = await Promise.all([client.encode(index, texts()), local.encodeSegments(texts())]);
      expect(remote!.map((ids) => Array.from(ids))).toEqual(here.map((ids) => Array.from(ids)));
    }
    await expect(client.encode(5, ["x"])).rejects.toThrow(/no model 5/);
  }, 30_000);

  it("encodes whole texts even where tokenizer.json configures truncation, as in process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "truncating-"));
    const json = JSON.parse(readFileSync(join(QWEN3_TOKENIZER, "tokenizer.json"), "utf8"));
    json.truncation = { direction: "Right", max_length: 8, strategy: "LongestFirst", stride: 0 };
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    copyFileSync(join(QWEN3_TOKENIZER, "tokenizer_config.json"), join(dir, "tokenizer_config.json"));
    const model = { name: "truncating", tokenizer: dir };
    const { client } = await started(7, undefined, [model]);
    const remote = await client.encode(0, texts());
    const here = await huggingFaceEncoder(loadModelFiles(model).tokenizer as never).encodeSegments(texts());
    expect(here.some((ids) => ids.length > 8)).toBe(true);
    expect(remote!.map((ids) => Array.from(ids))).toEqual(here.map((ids) => Array.from(ids)));
  }, 30_000);

  it.runIf(process.platform === "linux")("runs every thread of its process at the nice value, the encoder's pool included", async () => {
    const { bulk, client } = await started(7);
    await client.encode(0, texts()); // the encoder's threads exist now
    const nices = threadNices(bulk.pid!);
    expect(nices.length).toBeGreaterThan(3);
    expect(new Set(nices)).toEqual(new Set([7]));
    expect(threadNices(process.pid)).toContain(0);
  }, 30_000);

  it("fails the batches of a process that dies, answers null meanwhile, and is replaced", async () => {
    const { bulk, client } = await started(7, 0);
    const pid = bulk.pid!;
    const batch = client.encode(0, ["a".repeat(5_000_000)]);
    process.kill(pid, "SIGKILL");
    await expect(batch).rejects.toThrow(/went away/);
    expect(client.encode(0, ["x"])).toBeNull();
    let next: Promise<Uint32Array[]> | null = null;
    await until(() => bulk.pid !== undefined && bulk.pid !== pid && (next = client.encode(0, ["hello world"])) !== null);
    expect((await next!)[0].length).toBe(2);
  }, 30_000);
});

describe("SegmentedEncoder with a bulk encoder", () => {
  it("encodes a background bulk batch itself when the bulk encoder fails it", async () => {
    const files = loadModelFiles(MODELS[0]);
    let asked = 0;
    const failing = () => {
      asked++;
      return Promise.reject(new Error("gone"));
    };
    const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, new SegmentCache(0), "q\u0000", null, failing);
    const text = texts().join("\n\n");
    const ids = await encoder.idsOf(encoder.pieces(text, false)!, () => false, true);
    expect(Array.from(ids.flatMap((p) => Array.from(p)))).toEqual(Array.from(await encoder.encodeWhole(text, false)));
    expect(asked).toBeGreaterThan(0);
  });

  it("sends only background bulk batches to the bulk encoder: a decision's are encoded in the thread", async () => {
    const files = loadModelFiles(MODELS[0]);
    const sent: number[] = [];
    const counting = (batch: readonly string[]) => (sent.push(batch.length), null); // unavailable: encoded here after all
    const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, new SegmentCache(0), "q\u0000", null, counting);
    const text = texts().join("\n\n");
    const whole = Array.from(await encoder.encodeWhole(text, false));
    const decision = await encoder.idsOf(encoder.pieces(text, false)!);
    expect(sent).toEqual([]);
    expect(Array.from(decision.flatMap((p) => Array.from(p)))).toEqual(whole);
    const background = await encoder.idsOf(encoder.pieces(text, false)!, () => false, true);
    expect(sent.length).toBeGreaterThan(0);
    expect(Array.from(background.flatMap((p) => Array.from(p)))).toEqual(whole);
  });

  it("never makes a decision wait for pieces the bulk encoder is still encoding for the background: it encodes them itself", async () => {
    const files = loadModelFiles(MODELS[0]);
    // A bulk encoder that answers only when told (a process at nice 19 on a saturated host).
    const held: ((err: Error) => void)[] = [];
    const stalled = () => new Promise<Uint32Array[]>((_, reject) => held.push(reject));
    const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, new SegmentCache(64 << 20), "q\u0000", null, stalled);
    const text = texts().join("\n\n");
    const whole = Array.from(await encoder.encodeWhole(text, false));
    let backgroundDone = false;
    const background = encoder.idsOf(encoder.pieces(text, false)!, () => false, true).finally(() => (backgroundDone = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(held.length).toBeGreaterThan(0);
    expect(backgroundDone).toBe(false);
    const decision = await Promise.race([encoder.idsOf(encoder.pieces(text, false)!), new Promise<null>((r) => setTimeout(() => r(null), 5_000))]);
    expect(decision && Array.from(decision.flatMap((p) => Array.from(p)))).toEqual(whole);
    expect(backgroundDone).toBe(false);
    // The background completes once its bulk batches are answered (here: failed, so encoded in process).
    held.forEach((reject) => reject(new Error("answered late")));
    expect(Array.from((await background).flatMap((p) => Array.from(p)))).toEqual(whole);
  });
});
