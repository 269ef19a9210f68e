/**
 * The ingest API over real gRPC: batches in order, duplicates, gaps and resyncs, epochs, auth,
 * validation, liveness — and routing that follows what workers report.
 */
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/load-config";
import { chainOf } from "../src/state/cache-index.contract";
import { IngestTestClient, tokenFor, withIngestTokens } from "./support/ingest-client";
import { chatBody, QWEN3_TOKENIZER, routerKeys, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";

function ingestConfig(overrides: Record<string, unknown> = {}) {
  const base = testConfig();
  return testConfig({
    workers: withIngestTokens(base.workers),
    ingest: { listen: "127.0.0.1:0", livenessTimeoutMs: 60_000, maxEventsPerBatch: 50, ...overrides },
  });
}

async function runs(r: RunningRouter, keys: string[], workers = ["w1", "w2", "w3", "w4"]) {
  return Object.fromEntries(await r.service.index.lookup(keys, workers));
}

const grpcCode = (p: Promise<unknown>) => p.then(() => "ok", (e: { code: number }) => e.code);

describe("ingest API", () => {
  let r: RunningRouter;
  let ingest: IngestTestClient;
  beforeAll(async () => {
    r = await startTestRouter(ingestConfig());
    ingest = new IngestTestClient(r.service.ingest!.server.address);
  });
  afterAll(async () => {
    ingest.close();
    await r.stop();
  });
  afterEach(async () => {
    for (const w of ["w1", "w2", "w3", "w4"]) await r.service.ingest!.service.forget(w);
  });

  it("listens on its own port", () => {
    expect(r.service.ingest!.server.port).not.toBe(r.service.extProc.port);
  });

  it("applies batches in order; a retry is a duplicate and changes nothing", async () => {
    const chain = chainOf(6, "order");
    expect((await ingest.push({ worker: "w1", seq: 1, events: [{ stored: chain.slice(0, 4) }] })).status).toBe("APPLIED");
    expect((await ingest.push({ worker: "w1", seq: 2, events: [{ removed: [chain[3]] }, { stored: chain.slice(3, 6), parent: chain[2] }] })).status).toBe("APPLIED");
    expect(await runs(r, chain)).toEqual({ w1: 6, w2: 0, w3: 0, w4: 0 });
    const retry = await ingest.push({ worker: "w1", seq: 2, events: [{ removed: chain }] });
    expect(retry.status).toBe("DUPLICATE");
    expect(retry.applied_seq).toBe("2");
    expect(await runs(r, chain)).toEqual({ w1: 6, w2: 0, w3: 0, w4: 0 });
    expect((await ingest.push({ worker: "w1", seq: 2 })).status).toBe("DUPLICATE"); // heartbeat
  });

  it("applies removals and AllBlocksCleared", async () => {
    const chain = chainOf(4, "clear");
    await ingest.push({ worker: "w2", seq: 1, events: [{ stored: chain }] });
    await ingest.push({ worker: "w2", seq: 2, events: [{ removed: [chain[1]] }] });
    expect((await runs(r, chain)).w2).toBe(1);
    await ingest.push({ worker: "w2", seq: 3, events: [{ stored: [chain[1]] }, { cleared: true }, { stored: [chain[0]] }] });
    expect((await runs(r, chain)).w2).toBe(1);
    expect((await r.service.index.stats()).workers.w2.blocks).toBe(1);
  });

  it("detects a gap, asks for a resync until it comes, and the resync replaces the worker's entries", async () => {
    const chain = chainOf(8, "gap");
    await ingest.push({ worker: "w3", seq: 1, events: [{ stored: chain.slice(0, 2) }] });
    const gapsBefore = r.service.ingest!.service.counters.gaps;
    const gap = await ingest.push({ worker: "w3", seq: 3, events: [{ stored: chain.slice(2, 4) }] });
    expect(gap.status).toBe("RESYNC_REQUIRED");
    expect(r.service.ingest!.service.counters.gaps).toBe(gapsBefore + 1);
    expect((await ingest.push({ worker: "w3", seq: 4, events: [{ stored: chain }] })).status).toBe("RESYNC_REQUIRED");
    expect((await runs(r, chain)).w3).toBe(2); // nothing past the gap was applied

    const reply = await ingest.resync({ worker: "w3", seq: 4, keys: chain.slice(0, 5), pageSize: 2 });
    expect(reply).toEqual({ keys: "5", applied_seq: "4" });
    expect((await runs(r, chain)).w3).toBe(5);
    expect((await ingest.push({ worker: "w3", seq: 5, events: [{ stored: chain.slice(5) }] })).status).toBe("APPLIED");
    expect((await runs(r, chain)).w3).toBe(8);
  });

  it("a resync replaces, it does not add", async () => {
    const chain = chainOf(6, "replace");
    await ingest.push({ worker: "w4", seq: 1, events: [{ stored: chain }] });
    await ingest.resync({ worker: "w4", seq: 1, keys: chain.slice(0, 2) });
    expect((await runs(r, chain)).w4).toBe(2);
    expect((await r.service.index.stats()).workers.w4.blocks).toBe(2);
  });

  it("an unfinished resync applies nothing", async () => {
    const chain = chainOf(3, "unfinished");
    await ingest.push({ worker: "w4", seq: 1, events: [{ stored: chain }] });
    expect(await grpcCode(ingest.resync({ worker: "w4", seq: 1, keys: [], skipLast: true }))).toBe(status.INVALID_ARGUMENT);
    expect((await runs(r, chain)).w4).toBe(3);
  });

  it("a new epoch drops the worker's old entries", async () => {
    const chain = chainOf(4, "epoch");
    await ingest.push({ worker: "w1", epoch: "boot-1", seq: 1, events: [{ stored: chain }] });
    expect((await ingest.push({ worker: "w1", epoch: "boot-2", seq: 1, events: [{ stored: chain.slice(0, 1) }] })).status).toBe("APPLIED");
    expect((await runs(r, chain)).w1).toBe(1);
    // A restart whose first batches we missed: drop, and ask for a resync.
    expect((await ingest.push({ worker: "w1", epoch: "boot-3", seq: 7 })).status).toBe("RESYNC_REQUIRED");
    expect((await runs(r, chain)).w1).toBe(0);
  });

  it.each([
    { name: "no token", token: null, code: status.UNAUTHENTICATED, counter: "unauthenticated" },
    { name: "an unknown token", token: "not-a-real-token-at-all", code: status.UNAUTHENTICATED, counter: "unauthenticated" },
    { name: "another worker's token", token: tokenFor("w2"), code: status.PERMISSION_DENIED, counter: "permission-denied" },
  ] as const)("rejects a push with $name and counts it", async ({ token, code, counter }) => {
    const before = r.service.ingest!.service.counters.rejections[counter];
    const chain = chainOf(2, `auth-${counter}`);
    expect(await grpcCode(ingest.push({ worker: "w1", seq: 1, events: [{ stored: chain }], token }))).toBe(code);
    expect(r.service.ingest!.service.counters.rejections[counter]).toBe(before + 1);
    expect((await runs(r, chain)).w1).toBe(0);
  });

  it("rejects a resync with another worker's token", async () => {
    expect(await grpcCode(ingest.resync({ worker: "w1", seq: 1, keys: chainOf(1), token: tokenFor("w3") }))).toBe(status.PERMISSION_DENIED);
  });

  it.each([
    { name: "an unknown worker", args: { worker: "w9", token: tokenFor("w1") }, match: /worker_id "w9" is not a configured worker/ },
    { name: "a block size that disagrees", args: { blockSize: 32 }, match: /block_size 32 disagrees/ },
    { name: "a model the worker does not serve", args: { model: "mistral" }, match: /model "mistral" is not served/ },
    { name: "too many events", args: { events: Array.from({ length: 51 }, () => ({ cleared: true as const })) }, match: /exceed ingest.maxEventsPerBatch/ },
  ])("rejects $name with INVALID_ARGUMENT and applies nothing", async ({ args, match }) => {
    const chain = chainOf(2, "invalid");
    const err = await ingest.push({ worker: "w1", seq: 1, events: [{ stored: chain }], ...args }).then(
      () => null,
      (e: { code: number; details: string }) => e,
    );
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(match);
    expect((await runs(r, chain)).w1).toBe(0);
  });

  it("rejects keys that are not 8-byte aligned, even after a valid event, applying nothing", async () => {
    const chain = chainOf(2, "aligned");
    const raw = (ingest as unknown as { raw: { Push: (req: object, md: unknown, cb: (e: { code: number } | null) => void) => void } }).raw;
    const { Metadata } = await import("@grpc/grpc-js");
    const md = new Metadata();
    md.set("authorization", `Bearer ${tokenFor("w1")}`);
    const code = await new Promise((resolve) =>
      raw.Push(
        {
          worker_id: "w1",
          model: "qwen3",
          epoch: "e1",
          seq: "1",
          block_size: 16,
          events: [{ stored: { keys: Buffer.from(chain.join(""), "hex") } }, { removed: { keys: Buffer.alloc(7) } }],
        },
        md,
        (e) => resolve(e ? e.code : "ok"),
      ),
    );
    expect(code).toBe(status.INVALID_ARGUMENT);
    expect((await runs(r, chain)).w1).toBe(0);
  });

  it("routes to the worker whose reported cache holds the prompt's prefix", async () => {
    const body = chatBody("You are a support agent for ACME. " + "Policy text. ".repeat(400), "Where is my order?");
    const first = await r.client.process({ path: "/v1/chat/completions", body });
    const firstWorker = first.upstreamHeaders.get("x-prefix-router-worker")!;
    await first.complete(200);
    // The worker that actually has it (per its events) is another one; speculation must not win
    // over its report once the speculative entry is gone.
    const keys = await routerKeys(r.service, body);
    const holder = ["w1", "w2", "w3", "w4"].find((w) => w !== firstWorker)!;
    await ingest.push({ worker: holder, seq: 1, events: [{ stored: keys }] });
    await r.service.index.remove(firstWorker, keys);
    const second = await r.client.process({ path: "/v1/chat/completions", body });
    expect(second.upstreamHeaders.get("x-prefix-router-worker")).toBe(holder);
    expect(second.upstreamHeaders.get("x-prefix-router-decision")).toBe("hit");
    expect(second.upstreamHeaders.get("x-prefix-router-blocks")).toBe(`${keys.length}/${keys.length}`);
    await second.complete(200);
  });
});

describe("liveness", () => {
  it("a silent worker stops being a candidate and is purged; after a resync it is back", async () => {
    const r = await startTestRouter(ingestConfig({ livenessTimeoutMs: 400 }));
    const ingest = new IngestTestClient(r.service.ingest!.server.address);
    try {
      const chain = chainOf(3, "live");
      for (const w of ["w1", "w2", "w3", "w4"]) await ingest.push({ worker: w, seq: 1, events: w === "w2" ? [{ stored: chain }] : [] });
      // Keep w1, w3, w4 alive with heartbeats; w2 goes silent.
      const beat = setInterval(() => {
        for (const w of ["w1", "w3", "w4"]) void ingest.push({ worker: w, seq: 1 }).catch(() => undefined);
      }, 100);
      await new Promise((res) => setTimeout(res, 1_500));
      try {
        expect([...r.service.ingest!.service.staleWorkers()]).toEqual(["w2"]);
        expect((await runs(r, chain)).w2).toBe(0);
        for (let i = 0; i < 12; i++) {
          const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody(`liveness ${i}`, "hi") });
          expect(ex.upstreamHeaders.get("x-prefix-router-worker")).not.toBe("w2");
          expect(ex.upstreamHeaders.get("x-prefix-router-candidates")).toBe("3");
          await ex.complete(200);
        }
      } finally {
        clearInterval(beat); // the others stay live while requests are routed, however slow the machine
      }
      expect((await ingest.push({ worker: "w2", seq: 2 })).status).toBe("RESYNC_REQUIRED");
      await ingest.resync({ worker: "w2", seq: 2, keys: chain });
      expect(r.service.ingest!.service.staleWorkers().has("w2")).toBe(false);
      expect((await runs(r, chain)).w2).toBe(3);
    } finally {
      ingest.close();
      await r.stop();
    }
  });
});

describe("concurrent resyncs", () => {
  it("refuses a resync beyond ingest.maxConcurrentResyncs with RESOURCE_EXHAUSTED; one fits again once another is applied", async () => {
    const r = await startTestRouter(ingestConfig({ maxConcurrentResyncs: 1 }));
    const ingest = new IngestTestClient(r.service.ingest!.server.address);
    try {
      const first = ingest.openResync({ worker: "w1", seq: 1, keys: chainOf(3, "first") });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await grpcCode(ingest.resync({ worker: "w2", seq: 1, keys: chainOf(3, "second") }))).toBe(status.RESOURCE_EXHAUSTED);
      expect(r.service.ingest!.service.counters.rejections["resource-exhausted"]).toBe(1);
      expect((await first.finish()).keys).toBe("3");
      expect((await ingest.resync({ worker: "w2", seq: 1, keys: chainOf(3, "second") })).keys).toBe("3");
      // A resync the client gives up on (no last page) frees its place too.
      expect(await grpcCode(ingest.resync({ worker: "w3", seq: 1, keys: chainOf(3, "third"), skipLast: true }))).toBe(status.INVALID_ARGUMENT);
      expect((await ingest.resync({ worker: "w3", seq: 1, keys: chainOf(3, "third") })).keys).toBe("3");
    } finally {
      ingest.close();
      await r.stop();
    }
  });
});

describe("ingest config", () => {
  const base = {
    extProc: { listen: "127.0.0.1:9002" },
    ingest: { listen: "127.0.0.1:9003" },
    models: [{ name: "qwen3", tokenizer: QWEN3_TOKENIZER }],
  };
  it.each([
    ["ingestToken", { ingestToken: "shared-token-0123456789" }, { ingestToken: "shared-token-0123456789" }, /workers\.1\.ingestToken: the same token as worker "w1"/],
    ["ingestTokenEnv", { ingestTokenEnv: "TOKEN_W" }, { ingestTokenEnv: "TOKEN_W" }, /workers\.1\.ingestTokenEnv: the same variable as worker "w1"/],
  ])("refuses two workers with one %s", (_name, first, second, message) => {
    const workers = [
      { id: "w1", address: "127.0.0.1:8001", models: ["qwen3"], ...first },
      { id: "w2", address: "127.0.0.1:8002", models: ["qwen3"], ...second },
    ];
    expect(() => parseConfig({ ...base, workers })).toThrow(message);
  });

  it("refuses at startup two workers whose token variables hold one token", async () => {
    const workers = [
      { id: "w1", address: "127.0.0.1:8001", models: ["qwen3"], ingestTokenEnv: "PR_TEST_TOKEN_A" },
      { id: "w2", address: "127.0.0.1:8002", models: ["qwen3"], ingestTokenEnv: "PR_TEST_TOKEN_B" },
    ];
    process.env.PR_TEST_TOKEN_A = process.env.PR_TEST_TOKEN_B = "one-token-for-two-0123456789";
    try {
      await expect(startTestRouter(testConfig({ workers, ingest: { listen: "127.0.0.1:0" } }))).rejects.toThrow(/workers\[w2\]\.ingestTokenEnv \(PR_TEST_TOKEN_B\): the same token as worker w1/);
    } finally {
      delete process.env.PR_TEST_TOKEN_A;
      delete process.env.PR_TEST_TOKEN_B;
    }
  });

  it("refuses an ingest port equal to the ext_proc port", () => {
    expect(() =>
      parseConfig({
        extProc: { listen: "127.0.0.1:9002" },
        ingest: { listen: "127.0.0.1:9002", requireAuth: false },
        models: [{ name: "qwen3", tokenizer: QWEN3_TOKENIZER }],
        workers: [{ id: "w1", address: "127.0.0.1:8001", models: ["qwen3"] }],
      }),
    ).toThrow(/ingest\.listen: 127\.0\.0\.1:9002 is already used by extProc\.listen/);
  });
});
