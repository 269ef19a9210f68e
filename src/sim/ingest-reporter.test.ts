/** The reporter against the router's real ingest server (gRPC on a free port, in-process). */
import { afterEach, describe, expect, it } from "vitest";
import { bindAndWrap, type RunningServer } from "../common/grpc-server";
import { ingestSchema, type ModelConfig, type WorkerConfig } from "../config/schema";
import { IngestAuth } from "../ingest/ingest-auth";
import { BatchValidator } from "../ingest/ingest-batch";
import { createIngestServer } from "../ingest/ingest-server";
import { IngestService } from "../ingest/ingest-service";
import { MemoryWorkerStateStore } from "../ingest/worker-state-store";
import { MemoryCacheIndex } from "../state/memory-cache-index";
import { IngestReporter, type IngestReporterOptions } from "./ingest-reporter";
import type { BlockKey } from "../prefix/block-keys";

const TOKEN = "sim-worker-token-0123456789";
const key = (i: number) => i.toString(16).padStart(16, "0");
const keys = (from: number, n: number) => Array.from({ length: n }, (_, i) => key(from + i));

interface Rig {
  server: RunningServer;
  service: IngestService;
  index: MemoryCacheIndex;
  held(): Promise<number>;
}

async function router(port = 0): Promise<Rig> {
  const index = new MemoryCacheIndex({ maxEntries: 100_000 });
  const service = new IngestService({ index, states: new MemoryWorkerStateStore(), livenessTimeoutMs: 60_000 });
  const workers = [{ id: "sim-1", address: "127.0.0.1:1", models: ["m"], ingestToken: TOKEN }] as unknown as WorkerConfig[];
  const config = ingestSchema.parse({ listen: `127.0.0.1:${port}` });
  const server = await bindAndWrap(
    createIngestServer({ config, validator: new BatchValidator({ workers, models: [{ name: "m", aliases: [] } as unknown as ModelConfig], blockSize: 16 }, config), auth: new IngestAuth(workers, true), service }),
    config.listen,
  );
  return { server, service, index, held: async () => (await index.stats()).workers["sim-1"]?.blocks ?? 0 };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function reporter(target: string, held: Set<BlockKey>, over: Partial<IngestReporterOptions> = {}): IngestReporter {
  const r = new IngestReporter({ target, workerId: "sim-1", model: "m", blockSize: 16, token: TOKEN, flushMs: 10, heartbeatMs: 100, backoffMs: 10, backoffMaxMs: 50, snapshot: () => [...held], random: () => 0.5, ...over });
  cleanup.push(() => r.stop());
  return r;
}

describe("IngestReporter", () => {
  it("opens its epoch at seq 1, then pushes batches in order, and heartbeats when idle", async () => {
    const rig = await router();
    cleanup.push(() => rig.server.close());
    const r = reporter(rig.server.address, new Set());
    r.start();
    await until("the opening batch", () => r.stats.appliedSeq === 1);
    r.offer([{ type: "stored", keys: keys(0, 4), parent: null, tokens: new Uint32Array(64) }]);
    r.offer([{ type: "removed", keys: [key(3)] }]);
    expect(await r.flush()).toBe(true);
    expect(await rig.held()).toBe(3);
    r.offer([{ type: "stored", keys: [key(3)], parent: key(2), tokens: new Uint32Array(16) }]);
    expect(await r.flush()).toBe(true);
    expect(await rig.held()).toBe(4);
    expect(r.stats).toMatchObject({ appliedSeq: 3, batches: 3, events: 3, failures: 0 }); // batches: the opening one too
    await until("a heartbeat", () => r.stats.heartbeats > 0);
  });

  it("answers RESYNC_REQUIRED with the engine's key set, then carries on at seq + 1", async () => {
    const rig = await router();
    cleanup.push(() => rig.server.close());
    const held = new Set(keys(0, 5));
    const r = reporter(rig.server.address, held);
    r.start(); // it already holds keys: the first thing it sends is a resync
    await until("the resync", () => r.stats.resyncs === 1);
    expect(await rig.held()).toBe(5);
    await rig.service.forget("sim-1"); // the router loses its view (a restart)
    held.add(key(5));
    r.offer([{ type: "stored", keys: [key(5)], parent: key(4), tokens: new Uint32Array(16) }]);
    await until("the second resync", () => r.stats.resyncs === 2, 5000);
    expect(r.stats.resyncRequired).toBe(1);
    expect(await rig.held()).toBe(6);
    r.offer([{ type: "removed", keys: [key(0)] }]);
    expect(await r.flush()).toBe(true);
    expect(await rig.held()).toBe(5);
  });

  it("retries with backoff while the router is down, and delivers once it is up", async () => {
    const probe = await router();
    const port = probe.server.port;
    await probe.server.close();
    const r = reporter(`127.0.0.1:${port}`, new Set(), { rpcTimeoutMs: 200 });
    r.start();
    r.offer([{ type: "stored", keys: keys(0, 2), parent: null, tokens: new Uint32Array(32) }]);
    await until("failures", () => r.stats.failures >= 2);
    const rig = await router(port);
    cleanup.push(() => rig.server.close());
    await until("delivery", async () => (await rig.held()) === 2, 10_000);
    await until("the reply", () => r.stats.appliedSeq === 2); // the router applies before it answers
    expect(r.stats.resyncs).toBe(0); // the same batch, retried: nothing was lost
  });

  it("a rejected token is a configuration error: no retry storm", async () => {
    const rig = await router();
    cleanup.push(() => rig.server.close());
    const errors: string[] = [];
    const r = reporter(rig.server.address, new Set(), { token: "wrong-token-wrong-token", onError: (m) => errors.push(m) });
    r.start();
    await until("the rejection", () => r.stats.failures === 1);
    await new Promise((res) => setTimeout(res, 200));
    expect(r.stats.failures).toBe(1);
    expect(errors[0]).toMatch(/UNAUTHENTICATED|bearer/i);
  });
});
