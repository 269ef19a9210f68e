/**
 * RedisCacheIndex against a failing Redis: killed, paused, killed mid-call, restarted on the same
 * port. Its own redis-server, since these tests kill it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, type RedisServer } from "../../e2e/support/redis-server";
import { chainOf } from "./cache-index.contract";
import { RedisCacheIndex } from "./redis-cache-index";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let namespaces = 0;
const fresh = () => `f${process.pid}-${namespaces++}`;

describe("RedisCacheIndex when Redis fails", () => {
  let own: RedisServer;
  beforeAll(async () => {
    own = await startRedisServer();
  });
  afterAll(async () => {
    await own?.stop();
  });

  const timed = async (p: Promise<unknown>) => {
    const start = Date.now();
    const outcome = await p.then(() => "resolved", () => "rejected");
    return { outcome, ms: Date.now() - start };
  };

  it("rejects fast while Redis is dead and works again after it restarts on the same port", async () => {
    const index = await RedisCacheIndex.connect({ url: own.url, namespace: fresh(), commandTimeoutMs: 500 });
    try {
      const chain = chainOf(4);
      await index.add("w1", chain);
      own.kill();
      await sleep(50);
      for (const call of [index.lookup(chain, ["w1"]), index.apply("w1", [{ op: "add", keys: chain }])]) {
        const { outcome, ms } = await timed(call);
        expect(outcome).toBe("rejected");
        expect(ms).toBeLessThan(1000);
      }
      await own.restart();
      const deadline = Date.now() + 5000;
      let runs: ReadonlyMap<string, number> | undefined;
      while (!runs && Date.now() < deadline) runs = await index.lookup(chain, ["w1"]).catch(() => sleep(50).then(() => undefined));
      expect(runs?.get("w1")).toBe(0); // a fresh Redis is empty
      await index.add("w1", chain);
      expect((await index.lookup(chain, ["w1"])).get("w1")).toBe(4);
    } finally {
      await index.close();
    }
  });

  it("a call in flight when Redis dies rejects fast, well before its command timeout", async () => {
    const index = await RedisCacheIndex.connect({ url: own.url, namespace: fresh(), commandTimeoutMs: 5000 });
    try {
      own.pause(); // the lookup is written but never answered...
      const pending = timed(index.lookup(chainOf(4), ["w1"]));
      await sleep(50);
      own.kill(); // ...then the connection drops
      const { outcome, ms } = await pending;
      expect(outcome).toBe("rejected");
      expect(ms).toBeLessThan(1000);
    } finally {
      await own.restart();
      await index.close();
    }
  });

  it("a hung Redis (accepts, never answers) rejects within the command timeout", async () => {
    const index = await RedisCacheIndex.connect({ url: own.url, namespace: fresh(), commandTimeoutMs: 300 });
    try {
      own.pause();
      const { outcome, ms } = await timed(index.lookup(chainOf(4), ["w1"]));
      expect(outcome).toBe("rejected");
      expect(ms).toBeLessThan(1000);
    } finally {
      own.resume();
      await index.close();
    }
  });
});
