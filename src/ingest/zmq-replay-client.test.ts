/**
 * requestReplay against a real ZMQ ROUTER socket that answers in each framing vLLM has used
 * (vllm/distributed/kv_events.py `_service_replay`): current vLLM puts the topic before the seq
 * frame, older vLLM (and SGLang) did not.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Router } from "zeromq";
import { encodeSeq, requestReplay } from "./zmq-replay-client";

const END = encodeSeq(-1);
const empty = Buffer.alloc(0);
const routers: Router[] = [];
afterEach(() => {
  for (const r of routers.splice(0)) r.close();
});

/** A ROUTER that answers one replay request with `buffer` (seq ≥ start) in the given framing. */
async function replayServer(framing: "with-topic" | "without-topic", buffer: { seq: number; payload: string }[]): Promise<string> {
  const router = new Router({ linger: 0 });
  routers.push(router);
  await router.bind("tcp://127.0.0.1:*");
  void (async () => {
    const [client, , start] = await router.receive();
    const from = Number(start.readBigInt64BE(0));
    const topic = framing === "with-topic" ? [Buffer.from("kv")] : [];
    for (const b of buffer.filter((x) => x.seq >= from)) await router.send([client, empty, ...topic, encodeSeq(b.seq), Buffer.from(b.payload)]);
    await router.send(framing === "with-topic" ? [client, empty, empty, END, empty] : [client, empty, END, empty]);
  })().catch(() => undefined);
  return router.lastEndpoint!;
}

describe("requestReplay", () => {
  it.each(["with-topic", "without-topic"] as const)("reads every buffered batch from the start seq on (%s framing)", async (framing) => {
    const endpoint = await replayServer(framing, [
      { seq: 4, payload: "a" },
      { seq: 5, payload: "b" },
      { seq: 6, payload: "c" },
    ]);
    const reply = await requestReplay(endpoint, 5, { timeoutMs: 2000 });
    expect(reply).toEqual({ ok: true, batches: [{ seq: 5, payload: Buffer.from("b") }, { seq: 6, payload: Buffer.from("c") }] });
  });

  it("reports a reply it cannot read instead of guessing", async () => {
    const router = new Router({ linger: 0 });
    routers.push(router);
    await router.bind("tcp://127.0.0.1:*");
    void (async () => {
      const [client] = await router.receive();
      await router.send([client, empty, Buffer.from("short")]);
    })().catch(() => undefined);
    const reply = await requestReplay(router.lastEndpoint!, 0, { timeoutMs: 2000 });
    expect(reply).toEqual({ ok: false, error: "unexpected replay reply: 2 frames" });
  });
});
