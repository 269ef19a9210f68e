/**
 * A tokenizer worker thread (started by tokenizer-pool.ts): loads every model's tokenizer and
 * answers "keys for this prompt" jobs with a PromptKeyer — or "keys for this body": it parses the
 * body itself (from where it differs from a recent one: body-prefix-memo.ts) and resolves the model
 * it names. Jobs run concurrently — while one waits for the Rust encoder on the libuv pool, the
 * next renders.
 */
import { parentPort, workerData } from "node:worker_threads";
import { fail, UNKNOWN_MODEL } from "../failure";
import { BodyPrefixMemo } from "../request/body-prefix-memo";
import { parseOpenAiBody } from "../request/parse-openai-body";
import { BulkEncoderClient } from "./bulk-encoder";
import { PromptKeyer, type BodyKeys, type HeadProbe, type KeyedHead } from "./prompt-keyer";
import { niceThisThread } from "./thread-priority";
import { loadTokenizerRegistry } from "./tokenizer-registry";
import type { HeadVerdict, WorkerHeapProbe, WorkerInit, WorkerJob, WorkerReply } from "./tokenize-worker-protocol";

/**
 * Bytes of recent bodies a thread remembers to parse their next turns from where they differ
 * (body-prefix-memo.ts; at most 8 bodies, so eight 32k-token ones take ~1 MiB of it); with their
 * parsed strings ~3× that in memory.
 */
const BODY_MEMO_BYTES = 2 << 20;

async function main(): Promise<void> {
  const port = parentPort!;
  const init = workerData as WorkerInit;
  let registry: Awaited<ReturnType<typeof loadTokenizerRegistry>>;
  try {
    const bulkEncoder = init.bulkSocket === null ? undefined : new BulkEncoderClient(init.bulkSocket);
    registry = await loadTokenizerRegistry(init.models, { segmentCacheBytes: init.segmentCacheBytes, bulkGate: init.bulkGate, bulkEncoder });
  } catch (err) {
    port.postMessage({ kind: "failed", error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply);
    return;
  }
  const keyer = new PromptKeyer(registry, init.chainCacheBytes);
  // Bodies come here from 16 KiB up (smaller ones are parsed on the event loop).
  const bodies = new BodyPrefixMemo(BODY_MEMO_BYTES, 16 << 10);
  const done = (id: number, { result, parsed }: BodyKeys) => {
    // A head decision's rest follows in its own message once keyed (a promise does not cross threads).
    const rest = result.ok ? result.value.rest : undefined;
    const sent = result.ok && rest !== undefined ? { ...result, value: { ...result.value, rest: undefined } } : result;
    const stats = { ...keyer.stats(registry.stats()), bodyBytesReused: bodies.stats().bytesReused };
    port.postMessage({ kind: "done", id, result: sent, parsed, stats } satisfies WorkerReply);
    void rest?.then((keys) => port.postMessage({ kind: "rest", id, keys } satisfies WorkerReply));
  };
  /** Jobs waiting for the pool's verdict on a head, by id. */
  const verdicts = new Map<number, (more: boolean) => void>();
  const probeOf = (job: WorkerJob): HeadProbe | undefined =>
    job.probes
      ? Object.assign(
          (head: KeyedHead) =>
            new Promise<boolean>((resolve) => {
              verdicts.set(job.id, resolve);
              port.postMessage({ kind: "head", id: job.id, head } satisfies WorkerReply);
            }),
          { prefix: (head: KeyedHead) => port.postMessage({ kind: "prefix", id: job.id, head } satisfies WorkerReply) },
        )
      : undefined;
  port.on("message", (job: WorkerJob | WorkerHeapProbe | HeadVerdict) => {
    if ("verdict" in job) {
      verdicts.get(job.id)?.(job.more);
      verdicts.delete(job.id);
      return;
    }
    if ("probe" in job) {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      port.postMessage({ kind: "heap", id: job.id, heapUsed: process.memoryUsage().heapUsed } satisfies WorkerReply);
      return;
    }
    keysOf(job).then(
      (keyed) => done(job.id, keyed),
      (err: unknown) => done(job.id, { result: fail("tokenize-error", err instanceof Error ? err.message : String(err)), parsed: null }),
    );
  });

  /** A prompt job as it came; a body job parsed here, its model resolved through the catalog. */
  async function keysOf(job: WorkerJob): Promise<BodyKeys> {
    if (job.model !== null) return { result: await keyer.keys(job.model, job.prompt, job.spec, probeOf(job)), parsed: null };
    const { path, body } = job.prompt;
    const prompt = parseOpenAiBody(path, Buffer.from(body.buffer, body.byteOffset, body.byteLength), init.limits, bodies);
    if (!prompt.ok) return { result: prompt, parsed: null };
    const parsed = { model: prompt.value.model, stream: prompt.value.stream === true };
    const entry = Object.hasOwn(init.catalog, parsed.model) ? init.catalog[parsed.model] : undefined;
    if (entry === undefined) return { result: { ok: false, failure: UNKNOWN_MODEL }, parsed };
    return { result: await keyer.keys(entry.model, prompt.value, { ...job.spec, root: entry.root }, probeOf(job)), parsed };
  }
  // Once loaded: the pool started libuv's threads first (they encode for every thread of the
  // process and must not inherit a lowered priority).
  const priority = niceThisThread(init.nice);
  port.postMessage({ kind: "ready", ...priority } satisfies WorkerReply);
}

void main();
