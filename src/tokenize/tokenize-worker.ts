/**
 * A tokenizer worker thread (started by tokenizer-pool.ts): loads every model's tokenizer and
 * answers "keys for this prompt" jobs with a PromptKeyer. Jobs run concurrently — while one waits
 * for the Rust encoder on the libuv pool, the next renders.
 */
import { parentPort, workerData } from "node:worker_threads";
import { ok, type Outcome } from "../failure";
import { parseOpenAiBody } from "../request/parse-openai-body";
import type { Prompt } from "../request/prompt";
import { PromptKeyer } from "./prompt-keyer";
import { loadTokenizerRegistry } from "./tokenizer-registry";
import type { WorkerHeapProbe, WorkerInit, WorkerJob, WorkerReply } from "./tokenize-worker-protocol";

async function main(): Promise<void> {
  const port = parentPort!;
  const init = workerData as WorkerInit;
  let registry: Awaited<ReturnType<typeof loadTokenizerRegistry>>;
  try {
    registry = await loadTokenizerRegistry(init.models, { segmentCacheBytes: init.segmentCacheBytes, bulkGate: init.bulkGate });
  } catch (err) {
    port.postMessage({ kind: "failed", error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply);
    return;
  }
  const keyer = new PromptKeyer(registry, init.chainCacheBytes);
  const promptOf = (job: WorkerJob): Outcome<Prompt> =>
    "kind" in job.prompt ? ok(job.prompt) : parseOpenAiBody(job.prompt.path, Buffer.from(job.prompt.body.buffer, job.prompt.body.byteOffset, job.prompt.body.byteLength), init.limits);
  port.on("message", (job: WorkerJob | WorkerHeapProbe) => {
    if ("probe" in job) {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      port.postMessage({ kind: "heap", id: job.id, heapUsed: process.memoryUsage().heapUsed } satisfies WorkerReply);
      return;
    }
    const prompt = promptOf(job);
    const keyed = prompt.ok ? keyer.keys(job.model, prompt.value, job.spec) : Promise.resolve(prompt);
    keyed.then(
      (result) => port.postMessage({ kind: "done", id: job.id, result, stats: keyer.stats(registry.stats()) } satisfies WorkerReply),
      (err: unknown) => {
        const detail = err instanceof Error ? err.message : String(err);
        port.postMessage({ kind: "done", id: job.id, result: { ok: false, failure: { code: "tokenize-error", detail } }, stats: keyer.stats(registry.stats()) } satisfies WorkerReply);
      },
    );
  });
  port.postMessage({ kind: "ready" } satisfies WorkerReply);
}

void main();
