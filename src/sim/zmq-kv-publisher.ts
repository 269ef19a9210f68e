/**
 * vLLM's native KV-event stream for a simulated replica (vllm/distributed/kv_events.py
 * ZmqEventPublisher), so the router's ZmqKvSubscriber can consume it as it would a real vLLM:
 *
 *   PUB     multipart [topic, seq (8-byte big-endian), msgpack(KVEventBatch)], seq 0, 1, 2, … per start
 *   ROUTER  replay: [identity, "", start_seq (8B BE)] → [identity, "", seq, payload] for each buffered
 *           batch with seq ≥ start_seq, then [identity, "", -1 (8 × 0xFF), ""]; buffer of the last
 *           `bufferSteps` (10,000) batches.
 * Payload in the newer map encoding: {"ts", "events": [{"type": "BlockStored", "block_hashes",
 * "parent_block_hash", "token_ids", "block_size", "lora_id", "medium", "lora_name"}, …],
 * "data_parallel_rank"}. The "vLLM hash" of a block is its router key read as a uint64 (msgpack
 * uint64, like vLLM's default int hashes); the subscriber re-keys from token_ids and the parent
 * chain anyway, so only consistency matters. One batch per publish() with events, like one per
 * engine step in vLLM (empty batches are not sent).
 */
import { Encoder } from "@msgpack/msgpack";
import { Publisher, Router } from "zeromq";
import type { BlockKey } from "../prefix/block-keys";
import type { EngineKvEvent } from "./replica-model";

export interface ZmqKvPublisherOptions {
  /** PUB endpoint to bind, e.g. tcp://127.0.0.1:5557 (tcp://127.0.0.1:* picks a free port). */
  readonly endpoint: string;
  /** ROUTER replay endpoint to bind; none when absent. */
  readonly replayEndpoint?: string;
  readonly topic?: string;
  readonly blockSize: number;
  readonly dataParallelRank?: number;
  readonly bufferSteps?: number;
}

const END_SEQ = Buffer.alloc(8, 0xff);
const encoder = new Encoder({ useBigInt64: true });

export function seqFrame(seq: number): Buffer {
  const frame = Buffer.alloc(8);
  frame.writeBigUInt64BE(BigInt(seq));
  return frame;
}

const vllmHash = (key: BlockKey): bigint => BigInt(`0x${key}`);

/** One KVEventBatch payload in vLLM's map encoding. */
export function encodeKvEventBatch(events: readonly EngineKvEvent[], blockSize: number, tsSeconds: number, dpRank = 0): Uint8Array {
  return encoder.encode({
    ts: tsSeconds,
    events: events.map((e) => {
      switch (e.type) {
        case "stored":
          return {
            type: "BlockStored", block_hashes: e.keys.map(vllmHash), parent_block_hash: e.parent === null ? null : vllmHash(e.parent),
            token_ids: Array.from(e.tokens), block_size: blockSize, lora_id: null, medium: "GPU", lora_name: null,
          };
        case "removed":
          return { type: "BlockRemoved", block_hashes: e.keys.map(vllmHash), medium: "GPU" };
        case "cleared":
          return { type: "AllBlocksCleared" };
      }
    }),
    data_parallel_rank: dpRank,
  });
}

export class ZmqKvPublisher {
  private readonly pub = new Publisher({ linger: 0, sendHighWaterMark: 100_000 });
  private readonly router: Router | null;
  private readonly buffer: { seq: number; payload: Buffer }[] = [];
  private readonly topic: Buffer;
  private nextSeq = 0;
  private replayLoop: Promise<void> | undefined;
  private sending: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(private readonly o: ZmqKvPublisherOptions) {
    this.router = o.replayEndpoint ? new Router({ linger: 0 }) : null;
    this.topic = Buffer.from(o.topic ?? "");
  }

  static async start(options: ZmqKvPublisherOptions): Promise<ZmqKvPublisher> {
    const p = new ZmqKvPublisher({ ...options });
    await p.pub.bind(options.endpoint);
    if (p.router) {
      await p.router.bind(options.replayEndpoint!);
      p.replayLoop = p.serveReplays(p.router);
    }
    return p;
  }

  /** The bound PUB endpoint (resolves a "*" port). */
  get endpoint(): string {
    return this.pub.lastEndpoint ?? this.o.endpoint;
  }

  get replayEndpoint(): string | null {
    return this.router ? (this.router.lastEndpoint ?? this.o.replayEndpoint!) : null;
  }

  /** Publishes one batch (no-op without events); sends stay in seq order. */
  publish(events: readonly EngineKvEvent[]): void {
    if (this.closed || events.length === 0) return;
    const seq = this.nextSeq++;
    const payload = Buffer.from(encodeKvEventBatch(events, this.o.blockSize, Date.now() / 1000, this.o.dataParallelRank ?? 0));
    this.buffer.push({ seq, payload });
    if (this.buffer.length > (this.o.bufferSteps ?? 10_000)) this.buffer.shift();
    // zeromq allows one send at a time per socket: chain them.
    this.sending = this.sending.then(() => this.pub.send([this.topic, seqFrame(seq), payload])).catch(() => undefined);
  }

  /** The seq the next batch will carry. */
  get seq(): number {
    return this.nextSeq;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sending;
    this.pub.close();
    this.router?.close();
    await this.replayLoop;
  }

  private async serveReplays(router: Router): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await router.receive();
      } catch {
        return; // closed
      }
      if (frames.length !== 3 || frames[2].length !== 8) continue;
      const [identity, , start] = frames;
      const from = Number(start.readBigInt64BE(0));
      try {
        for (const b of this.buffer.filter((x) => x.seq >= from)) await router.send([identity, Buffer.alloc(0), seqFrame(b.seq), b.payload]);
        await router.send([identity, Buffer.alloc(0), END_SEQ, Buffer.alloc(0)]);
      } catch {
        if (this.closed) return;
      }
    }
  }
}
