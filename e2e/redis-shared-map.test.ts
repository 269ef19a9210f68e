/**
 * Several routers sharing one Redis (a redis-server these tests start on a free port): blocks
 * reported through one router's ingest and speculative records of one router's decisions are seen
 * by the other; a dead or hung Redis degrades routing to the fallback policy and never fails it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chainOf } from "../src/state/cache-index.contract";
import { IngestTestClient, withIngestTokens } from "./support/ingest-client";
import { startRedisServer, type RedisServer } from "./support/redis-server";
import { chatBody, routerKeys, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";

function redisConfig(url: string, extra: Record<string, unknown> = {}) {
  const base = testConfig();
  return testConfig({
    store: { kind: "redis", url, namespace: "e2e", commandTimeoutMs: 500 },
    workers: withIngestTokens(base.workers),
    ingest: { listen: "127.0.0.1:0", livenessTimeoutMs: 600_000 },
    admin: { listen: "127.0.0.1:0" },
    ...extra,
  });
}

describe("routers sharing one Redis", () => {
  let redis: RedisServer;
  let r1: RunningRouter;
  let r2: RunningRouter;
  beforeAll(async () => {
    redis = await startRedisServer();
    r1 = await startTestRouter(redisConfig(redis.url));
    r2 = await startTestRouter(redisConfig(redis.url));
  });
  afterAll(async () => {
    await r1?.stop();
    await r2?.stop();
    await redis?.stop();
  });

  it("a block stored through router 1's ingest is seen by router 2's next lookup", async () => {
    const body = chatBody("shared redis map " + "policy ".repeat(300), "q");
    const keys = await routerKeys(r1.service, body);
    const ingest = new IngestTestClient(r1.service.ingest!.server.address);
    expect((await ingest.push({ worker: "w4", seq: 1, events: [{ stored: keys }] })).status).toBe("APPLIED");
    ingest.close();
    const ex = await r2.client.process({ path: "/v1/chat/completions", body });
    expect(ex.upstreamHeaders.get("x-prefix-router-worker")).toBe("w4");
    expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toBe("hit");
    expect(ex.upstreamHeaders.get("x-prefix-router-blocks")).toBe(`${keys.length}/${keys.length}`);
    await ex.complete(200);
  });

  it("speculative records are shared: router 2 follows router 1's decision on a new prefix", async () => {
    const body = chatBody("a brand new conversation " + "context ".repeat(200), "first");
    const first = await r1.client.process({ path: "/v1/chat/completions", body });
    expect(first.upstreamHeaders.get("x-prefix-router-decision")).toBe("miss");
    const chosen = first.upstreamHeaders.get("x-prefix-router-worker");
    await first.complete(200);
    await new Promise((res) => setTimeout(res, 50)); // the speculative write is fire-and-forget
    const second = await r2.client.process({ path: "/v1/chat/completions", body: chatBody("a brand new conversation " + "context ".repeat(200), "second turn") });
    expect(second.upstreamHeaders.get("x-prefix-router-decision")).toBe("hit");
    expect(second.upstreamHeaders.get("x-prefix-router-worker")).toBe(chosen);
    await second.complete(200);
  });

  it("worker sequence state is shared: a worker may continue its sequence on the other router", async () => {
    const a = new IngestTestClient(r1.service.ingest!.server.address);
    const b = new IngestTestClient(r2.service.ingest!.server.address);
    const chain = chainOf(4, "failover");
    expect((await a.push({ worker: "w2", epoch: "boot-9", seq: 1, events: [{ stored: chain.slice(0, 2) }] })).status).toBe("APPLIED");
    expect((await b.push({ worker: "w2", epoch: "boot-9", seq: 2, events: [{ stored: chain.slice(2) }] })).status).toBe("APPLIED");
    expect((await b.push({ worker: "w2", epoch: "boot-9", seq: 1 })).status).toBe("DUPLICATE");
    expect(Object.fromEntries(await r1.service.index.lookup(chain, ["w2"]))).toEqual({ w2: 4 });
    a.close();
    b.close();
  });
});

describe("keeping the shared map honest", () => {
  it("a router started without a worker in its config purges that worker's entries and state", async () => {
    const redis = await startRedisServer();
    try {
      const full = await startTestRouter(redisConfig(redis.url));
      const ingest = new IngestTestClient(full.service.ingest!.server.address);
      const chain = chainOf(3, "removed");
      await ingest.push({ worker: "w4", seq: 1, events: [{ stored: chain }] });
      await ingest.push({ worker: "w1", seq: 1, events: [{ stored: chain }] });
      ingest.close();
      await full.stop();

      const base = redisConfig(redis.url);
      const smaller = await startTestRouter({ ...base, workers: base.workers.filter((w) => w.id !== "w4") });
      try {
        expect(Object.fromEntries(await smaller.service.index.lookup(chain, ["w1", "w4"]))).toEqual({ w1: 3, w4: 0 });
        expect((await smaller.service.index.stats()).workers.w4?.blocks ?? 0).toBe(0);
        expect(await smaller.service.workerStates.get("w4")).toBeUndefined();
        expect(await smaller.service.workerStates.get("w1")).toBeDefined();
      } finally {
        await smaller.stop();
      }
    } finally {
      await redis.stop();
    }
  });
});

describe("Redis outages degrade routing, never fail it", () => {
  let redis: RedisServer;
  let r: RunningRouter;
  beforeAll(async () => {
    redis = await startRedisServer();
    r = await startTestRouter(redisConfig(redis.url, { routing: { lookupTimeoutMs: 100 } }));
  });
  afterAll(async () => {
    await r?.stop();
    await redis?.stop();
  });

  const route = async (i: number) => {
    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody(`outage ${i} ` + "text ".repeat(100), "hi") });
    await ex.complete(200);
    return ex;
  };

  it("falls back with reason store-error while Redis is down or hung, and recovers", async () => {
    expect((await route(0)).upstreamHeaders.get("x-prefix-router-decision")).toMatch(/^(hit|miss)$/);

    redis.kill();
    await new Promise((res) => setTimeout(res, 200));
    const down = await route(1);
    expect(down.upstreamHeaders.get("x-prefix-router-decision")).toBe("fallback");
    expect(down.upstreamHeaders.get("x-prefix-router-reason")).toBe("store-error");
    expect(down.upstreamHeaders.get("x-gateway-destination-endpoint")).toMatch(/^10\.0\.0\.[1-4]:8000$/);

    await redis.restart();
    let recovered = "";
    for (let i = 0; i < 50 && recovered !== "ok"; i++) {
      await new Promise((res) => setTimeout(res, 100));
      recovered = /^(hit|miss)$/.test((await route(100 + i)).upstreamHeaders.get("x-prefix-router-decision") ?? "") ? "ok" : "";
    }
    expect(recovered).toBe("ok");

    redis.pause(); // accepts connections, never answers
    try {
      const t0 = Date.now();
      const hung = await route(2);
      expect(hung.upstreamHeaders.get("x-prefix-router-reason")).toBe("store-error");
      expect(Date.now() - t0).toBeLessThan(1_000); // the lookup budget, not the command timeout
      expect(Number(hung.upstreamHeaders.get("x-prefix-router-decision-us"))).toBeLessThan(400_000);
    } finally {
      redis.resume();
    }

    const metrics = await (await fetch(`http://${r.service.admin!.address}/metrics`)).text();
    expect(metrics).toMatch(/prefix_router_decisions_total\{outcome="fallback",reason="store-error"\} [2-9]/);
    expect(metrics).toMatch(/prefix_router_store_errors_total\{op="lookup"\} [1-9]/);
  });
});
