/**
 * One replay request to vLLM's ROUTER replay socket (`replay_endpoint` in --kv-events-config).
 *
 * Protocol, from vllm/distributed/kv_events.py `ZmqEventPublisher._service_replay`: the ROUTER
 * reads `[identity, "", start_seq]` (start_seq: 8 bytes, big-endian) and answers, for every buffered
 * batch with seq ≥ start_seq, one reply, then an end marker with seq END_SEQ =
 * (-1).to_bytes(8, "big", signed=True). The buffer is a deque of the last `buffer_steps` (default
 * 10,000) batches. A DEALER reads every reply (a REQ socket may not: one reply per request).
 * Two framings, as a DEALER sees them:
 * - current vLLM (0.32.0, checked against the real publisher): `["", topic, seq, payload]`, end `["", "", END_SEQ, ""]`;
 * - older vLLM and SGLang: `["", seq, payload]`, end `["", END_SEQ, ""]`.
 * The seq frame is the 8-byte frame right before the payload in both.
 * A fresh DEALER per request, so a late reply to a timed-out request can never be mistaken for
 * the answer to the next one.
 */
import { Dealer } from "zeromq";

export interface ReplayedBatch {
  readonly seq: number;
  readonly payload: Buffer;
}

export type ReplayResult = { readonly ok: true; readonly batches: ReplayedBatch[] } | { readonly ok: false; readonly error: string };

export interface ReplayOptions {
  /** Longest wait for any one reply frame set (default 2000 ms). */
  readonly timeoutMs?: number;
  /** Closing aborts the request (subscriber stop). */
  readonly signal?: AbortSignal;
}

export const END_SEQ = -1;

export function encodeSeq(seq: number): Buffer {
  const frame = Buffer.alloc(8);
  frame.writeBigInt64BE(BigInt(seq));
  return frame;
}

/** Requests every buffered batch from `startSeq` on. Never throws. */
export async function requestReplay(endpoint: string, startSeq: number, options: ReplayOptions = {}): Promise<ReplayResult> {
  const timeoutMs = options.timeoutMs ?? 2000;
  if (options.signal?.aborted) return { ok: false, error: "aborted" };
  const dealer = new Dealer({ linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs });
  const abort = (): void => dealer.close();
  options.signal?.addEventListener("abort", abort, { once: true });
  try {
    dealer.connect(endpoint);
    await dealer.send([Buffer.alloc(0), encodeSeq(startSeq)]);
    const batches: ReplayedBatch[] = [];
    for (;;) {
      const frames = await dealer.receive();
      const seqFrame = frames[frames.length - 2];
      if ((frames.length !== 3 && frames.length !== 4) || frames[0].length !== 0 || seqFrame.length !== 8) {
        return { ok: false, error: `unexpected replay reply: ${frames.length} frames` };
      }
      const seq = Number(seqFrame.readBigInt64BE(0));
      if (seq === END_SEQ) return { ok: true, batches };
      batches.push({ seq, payload: frames[frames.length - 1] });
    }
  } catch (err) {
    return { ok: false, error: options.signal?.aborted ? "aborted" : (err as Error).message };
  } finally {
    options.signal?.removeEventListener("abort", abort);
    if (!dealer.closed) dealer.close();
  }
}
