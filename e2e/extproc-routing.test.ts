/**
 * The ext_proc server over a real socket, driven message for message the way Envoy drives it,
 * in both body modes, with the real Qwen3 tokenizer and the embedded in-memory map.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Exchange } from "./support/envoy-ext-proc-client";
import { IngestTestClient, withIngestTokens } from "./support/ingest-client";
import { chatBody, realPrompts, routerKeys, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";

const MODES = ["buffered", "full-duplex-streamed"] as const;
// A long shared prefix: the three longest real prompts (a few thousand tokens).
const SYSTEM = [...realPrompts()].sort((a, b) => b.length - a.length).slice(0, 3).join("\n\n");

function header(ex: Exchange, name: string): string | undefined {
  return ex.upstreamHeaders.get(name);
}

describe("ext_proc routing", () => {
  let r: RunningRouter;
  beforeAll(async () => {
    r = await startTestRouter();
  });
  afterAll(async () => {
    await r.stop();
  });

  describe.each(MODES)("%s body mode", (mode) => {
    it("keeps same-prefix chat requests on one worker", async () => {
      const system = `${mode} conversation. ${SYSTEM}`;
      const workers: string[] = [];
      const decisions: string[] = [];
      for (let turn = 0; turn < 6; turn++) {
        const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody(system, `question ${turn}: ${realPrompts()[turn + 10]}`), mode });
        workers.push(header(ex, "x-prefix-router-worker")!);
        decisions.push(header(ex, "x-prefix-router-decision")!);
        await ex.complete(200);
      }
      expect(new Set(workers).size).toBe(1);
      expect(decisions[0]).toBe("miss");
      expect(decisions.slice(1)).toEqual(Array(5).fill("hit"));
    });

    it("spreads different prefixes across workers", async () => {
      const counts = new Map<string, number>();
      for (let i = 0; i < 40; i++) {
        const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody(`${mode} tenant ${i}: ${realPrompts()[100 + i]}`, "hello"), mode });
        const w = header(ex, "x-prefix-router-worker")!;
        counts.set(w, (counts.get(w) ?? 0) + 1);
        await ex.complete(200);
      }
      expect(counts.size, JSON.stringify([...counts])).toBe(4);
      for (const n of counts.values()) expect(n, JSON.stringify([...counts])).toBeGreaterThanOrEqual(4);
    });

    it("sets the destination in raw_value, in dynamic metadata, and clears the route cache", async () => {
      const ex = await r.client.process({
        path: "/v1/chat/completions",
        body: chatBody("You are terse.", "hi"),
        mode,
        headers: { "x-gateway-destination-endpoint": "6.6.6.6:666", "x-prefix-router-worker": "forged" },
      });
      const dest = header(ex, "x-gateway-destination-endpoint")!;
      expect(dest).toMatch(/^10\.0\.0\.[1-4]:8000$/);
      expect(header(ex, "x-prefix-router-worker")).not.toBe("forged");
      expect(ex.dynamicMetadata?.fields?.["envoy.lb"]?.structValue?.fields?.["x-gateway-destination-endpoint"]?.stringValue).toBe(dest);
      expect(ex.clearRouteCache).toBe(true);
      expect(ex.protocolError).toBeNull();
      for (const resp of ex.responses) {
        const common = resp.request_headers?.response ?? resp.request_body?.response;
        for (const set of common?.header_mutation?.set_headers ?? []) {
          expect(set.header.value ?? "").toBe("");
          expect(set.header.raw_value?.length).toBeGreaterThan(0);
        }
      }
      await ex.complete(200);
    });
  });

  it("keys only the head of a long prompt no worker holds, says so, and sends what follows it to the same worker", async () => {
    const headDecisions = async () => (await r.service.metrics.registry.getSingleMetricAsString("prefix_router_head_decisions_total")).match(/_total (\d+)/)![1];
    const before = Number(await headDecisions());
    const document = `A new document. ${SYSTEM}`;
    const first = await r.client.process({ path: "/v1/chat/completions", body: chatBody(document, "Summarize it."), mode: "buffered" });
    expect(header(first, "x-prefix-router-decision")).toBe("miss");
    expect(header(first, "x-prefix-router-keyed")).toBe("head");
    const [, headBlocks] = header(first, "x-prefix-router-blocks")!.split("/").map(Number);
    // The document is thousands of tokens; its head ~2,048 characters (~500 tokens, ~30 blocks).
    expect(headBlocks).toBeGreaterThan(0);
    expect(headBlocks * 16 * 4).toBeLessThan(document.length / 2);
    await first.complete(200);
    // Counted when the stream ends (the server sees the end a moment after the client).
    for (let i = 0; i < 50 && Number(await headDecisions()) === before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(Number(await headDecisions())).toBe(before + 1);
    const next = await r.client.process({ path: "/v1/chat/completions", body: chatBody(document, "And the second part?"), mode: "buffered" });
    expect(header(next, "x-prefix-router-decision")).toBe("hit");
    expect(header(next, "x-prefix-router-worker")).toBe(header(first, "x-prefix-router-worker"));
    await next.complete(200);
    // explain says so too, for another new document.
    const other = await r.service.router.explain({ method: "POST", path: "/v1/chat/completions", body: Buffer.from(chatBody(`Another document. ${SYSTEM}`, "Summarize it.")), subset: null });
    expect(other.headOnly).toBe(true);
    expect(other.keys.length).toBeGreaterThan(0);
    expect(other.keys.length).toBeLessThan(2 * headBlocks);
  });

  it("keys a short prompt whole", async () => {
    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody("You are terse and new.", "hi"), mode: "buffered" });
    expect(header(ex, "x-prefix-router-keyed")).toBeUndefined();
    await ex.complete(200);
  });

  it("buffered: answers headers first, then routes in the body response", async () => {
    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody("sys", "hi"), mode: "buffered" });
    expect(ex.responses.map((m) => Object.keys(m).filter((k) => k !== "dynamic_metadata")[0])).toEqual(["request_headers", "request_body"]);
    expect(ex.responses[0].request_headers?.response?.header_mutation?.set_headers ?? []).toHaveLength(0);
    expect(ex.responses[1].request_body?.response?.header_mutation?.set_headers?.length).toBeGreaterThan(0);
    await ex.complete(200);
  });

  it("full duplex: holds the headers answer until the body ends, then echoes the body in ≤ 64 KiB chunks", async () => {
    const big = chatBody(SYSTEM.repeat(Math.ceil(300_000 / SYSTEM.length)), "summarize"); // ≥ 300 KB
    const ex = await r.client.process({ path: "/v1/chat/completions", body: big, mode: "full-duplex-streamed", chunkBytes: 10_000 });
    expect(Object.keys(ex.responses[0])).toContain("request_headers");
    expect(ex.responses[0].request_headers?.response?.header_mutation?.set_headers?.length).toBeGreaterThan(0);
    expect(ex.upstreamBody.equals(Buffer.from(big))).toBe(true);
    expect(ex.streamedChunkSizes.length).toBeGreaterThan(1);
    for (const size of ex.streamedChunkSizes) expect(size).toBeLessThanOrEqual(64 * 1024);
    expect(header(ex, "x-prefix-router-decision")).toMatch(/^(hit|miss)$/);
    await ex.complete(200);
  });

  it("full duplex without protocol_config uses the configured mode (buffered by default)", async () => {
    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody("sys", "hi"), mode: "buffered", announceMode: false });
    expect(header(ex, "x-prefix-router-decision")).toMatch(/^(hit|miss)$/);
    await ex.complete();
  });

  it("routes requests without a body right after the headers", async () => {
    const ex = await r.client.process({ method: "GET", path: "/v1/models" });
    expect(ex.responses).toHaveLength(1);
    expect(ex.responses[0].request_headers).toBeDefined();
    expect(header(ex, "x-prefix-router-decision")).toBe("fallback");
    expect(header(ex, "x-prefix-router-reason")).toBe("no-body");
    expect(header(ex, "x-gateway-destination-endpoint")).toMatch(/^10\.0\.0\.\d:8000$/);
    await ex.complete(200);
  });

  it("explains every decision in debug headers", async () => {
    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody(SYSTEM, "explain yourself") });
    expect(header(ex, "x-prefix-router-blocks")).toMatch(/^\d+\/\d+$/);
    const [, total] = header(ex, "x-prefix-router-blocks")!.split("/").map(Number);
    expect(total).toBeGreaterThan(10);
    expect(header(ex, "x-prefix-router-candidates")).toBe("4");
    expect(Number(header(ex, "x-prefix-router-decision-us"))).toBeGreaterThan(0);
    expect(header(ex, "x-prefix-router-model")).toBe("qwen3");
    await ex.complete(200);
  });
});

describe("a head decision's route", () => {
  it("covers the whole prompt once its rest is keyed: the follow-up stays there though another worker reported more than the head", async () => {
    const base = testConfig();
    const r = await startTestRouter(testConfig({ workers: withIngestTokens(base.workers), ingest: { listen: "127.0.0.1:0", livenessTimeoutMs: 600_000 } }));
    const ingest = new IngestTestClient(r.service.ingest!.server.address);
    try {
      const document = `A document the chosen worker computes whole. ${SYSTEM}`;
      const body = chatBody(document, "Summarize it.");
      const first = await r.client.process({ path: "/v1/chat/completions", body, mode: "buffered" });
      expect(header(first, "x-prefix-router-keyed")).toBe("head");
      const chosen = header(first, "x-prefix-router-worker")!;
      const [, headBlocks] = header(first, "x-prefix-router-blocks")!.split("/").map(Number);
      await first.complete(200);
      const keys = await routerKeys(r.service, body);
      expect(keys.length).toBeGreaterThan(4 * headBlocks);
      // Another worker's KV events say it holds three heads' worth of the same prompt.
      const other = base.workers.map((w) => w.id).find((id) => id !== chosen)!;
      await ingest.push({ worker: other, seq: 1, events: [{ stored: keys.slice(0, 3 * headBlocks) }] });
      // The rest is keyed after the answer (encoded at nice 19: slow on a busy machine, hence the
      // generous wait); then the chosen worker's route covers all of it.
      const held = async () => (await r.service.index.lookup(keys, [chosen])).get(chosen) ?? 0;
      for (let i = 0; i < 400 && (await held()) < keys.length; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await held()).toBe(keys.length);
      const next = await r.client.process({ path: "/v1/chat/completions", body: chatBody(document, "And the second part?"), mode: "buffered" });
      expect(header(next, "x-prefix-router-worker")).toBe(chosen);
      expect(Number(header(next, "x-prefix-router-blocks")!.split("/")[0])).toBeGreaterThan(3 * headBlocks);
      await next.complete(200);
    } finally {
      ingest.close();
      await r.stop();
    }
  });
});

describe("a warm prompt's cached prefix", () => {
  it("is looked up while the new turn is encoded; the decision asks only the workers holding all of it about the blocks past it", async () => {
    const base = testConfig();
    const r = await startTestRouter(testConfig({ workers: withIngestTokens(base.workers), ingest: { listen: "127.0.0.1:0", livenessTimeoutMs: 600_000 } }));
    const ingest = new IngestTestClient(r.service.ingest!.server.address);
    const lookups: { blocks: number; workers: number; parent: boolean }[] = [];
    const lookup = r.service.index.lookup.bind(r.service.index);
    r.service.index.lookup = (keys, workers, parent) => (lookups.push({ blocks: keys.length, workers: workers.length, parent: parent !== undefined }), lookup(keys, workers, parent));
    try {
      // Over 512 blocks of real text (~12k tokens), under the large-prompt lane's 64 KiB.
      const longest = [...realPrompts()].sort((a, b) => b.length - a.length);
      let document = "A manual every turn repeats.";
      for (let i = 0; document.length < 50_000; i++) document += `\n\n${longest[i]}`;
      const first = await r.client.process({ path: "/v1/chat/completions", body: chatBody(document, "Summarize it."), mode: "buffered" });
      const chosen = header(first, "x-prefix-router-worker")!;
      await first.complete(200);
      const followUp = chatBody(document, "And the second part?");
      const keys = await routerKeys(r.service, followUp);
      expect(keys.length).toBeGreaterThan(600);
      // Wait until the first prompt's rest is keyed (its thread then holds the document's points).
      const firstKeys = await routerKeys(r.service, chatBody(document, "Summarize it."));
      const recorded = async () => (await lookup(firstKeys, [chosen])).get(chosen) ?? 0;
      for (let i = 0; i < 400 && (await recorded()) < firstKeys.length; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      // One other worker holds the whole follow-up, another all but its last blocks.
      const [whole, most] = base.workers.map((w) => w.id).filter((id) => id !== chosen);
      await ingest.push({ worker: whole, seq: 1, events: [{ stored: keys }] });
      await ingest.push({ worker: most, seq: 1, events: [{ stored: keys.slice(0, keys.length - 3) }] });
      lookups.length = 0;
      const next = await r.client.process({ path: "/v1/chat/completions", body: followUp, mode: "buffered" });
      expect(header(next, "x-prefix-router-worker")).toBe(whole);
      expect(header(next, "x-prefix-router-blocks")).toBe(`${keys.length}/${keys.length}`);
      await next.complete(200);
      // The cached prefix (the document) for all four, then the few blocks past it for the workers
      // holding all of it, placed older than the prefix's last block.
      expect(lookups.length).toBe(2);
      expect(lookups[0]).toMatchObject({ workers: 4, parent: false });
      expect(lookups[0].blocks).toBeGreaterThanOrEqual(512);
      expect(lookups[1].blocks).toBe(keys.length - lookups[0].blocks);
      expect(lookups[1].blocks).toBeLessThan(16);
      expect(lookups[1].parent).toBe(true);
      expect(lookups[1].workers).toBeGreaterThanOrEqual(2); // whole, most (and the first's worker)
    } finally {
      ingest.close();
      await r.stop();
    }
  });
});

describe("subset hint", () => {
  let r: RunningRouter;
  beforeAll(async () => {
    r = await startTestRouter();
  });
  afterAll(async () => r.stop());

  it("routes only within the subset", async () => {
    for (let i = 0; i < 8; i++) {
      const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody(`subset ${i} ${SYSTEM}`, "hi"), subset: ["10.0.0.2:8000", "10.0.0.3:8000"] });
      expect(["10.0.0.2:8000", "10.0.0.3:8000"]).toContain(header(ex, "x-gateway-destination-endpoint"));
      expect(header(ex, "x-prefix-router-candidates")).toBe("2");
      await ex.complete(200);
    }
  });

  it.each([
    { name: "no known endpoint", subset: ["192.168.9.9:8000"] },
    { name: "an empty list", subset: [] },
  ])("answers 503 when the subset has $name", async ({ subset }) => {
    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody("sys", "hi"), subset });
    expect(ex.immediateResponse?.status.code).toBe(503);
    expect(ex.immediateResponse?.body?.toString()).toMatch(/no eligible worker/);
    await ex.complete();
  });

  it("answers 503 in full-duplex mode too", async () => {
    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody("sys", "hi"), subset: [], mode: "full-duplex-streamed" });
    expect(ex.immediateResponse?.status.code).toBe(503);
    await ex.complete();
  });
});

describe("load", () => {
  it("releases a worker's in-flight count when the stream ends, is cancelled, or the request is rejected", async () => {
    const r = await startTestRouter();
    try {
      const held: Exchange[] = [];
      for (let i = 0; i < 6; i++) held.push(await r.client.process({ path: "/v1/chat/completions", body: chatBody(`load ${i} ${SYSTEM}`, "hi") }));
      const total = () => ["w1", "w2", "w3", "w4"].reduce((n, w) => n + r.service.router.inFlight.inFlight(w), 0);
      expect(total()).toBe(6);
      await held[0].complete(200);
      await held[1].complete();
      held[2].cancel();
      await new Promise((res) => setTimeout(res, 200));
      expect(total()).toBe(3);
      for (const ex of held.slice(3)) await ex.complete(200);
      expect(total()).toBe(0);
    } finally {
      await r.stop();
    }
  });

  it("sticky-least-loaded: the load guard spreads a burst on one prefix; without it the burst piles on one worker", async () => {
    const burst = async (absolute: number) => {
      const r = await startTestRouter(testConfig({ routing: { policy: "sticky-least-loaded", minGainBlocks: 0, loadGuard: { absolute, relative: 1.5 } } }));
      try {
        const exchanges = await Promise.all(
          Array.from({ length: 24 }, (_, i) => r.client.process({ path: "/v1/chat/completions", body: chatBody(`burst ${SYSTEM}`, `user ${i}`) })),
        );
        const perWorker = new Map<string, number>();
        for (const ex of exchanges) perWorker.set(header(ex, "x-prefix-router-worker")!, (perWorker.get(header(ex, "x-prefix-router-worker")!) ?? 0) + 1);
        const guardReasons = exchanges.filter((ex) => header(ex, "x-prefix-router-reason") === "load-guard").length;
        await Promise.all(exchanges.map((ex) => ex.complete(200)));
        return { perWorker, guardReasons };
      } finally {
        await r.stop();
      }
    };
    const guarded = await burst(2);
    expect(guarded.perWorker.size).toBe(4);
    expect(Math.max(...guarded.perWorker.values())).toBeLessThanOrEqual(9);
    expect(guarded.guardReasons).toBeGreaterThan(0);

    const unguarded = await burst(1000);
    expect(unguarded.perWorker.size).toBe(1);
    expect(unguarded.guardReasons).toBe(0);
  });
});
