#!/usr/bin/python3
"""Fake vLLM KV event publisher for e2e/zmq-kv-events.test.ts (Debian python3-zmq + python3-msgpack).

Emulates vllm/distributed/kv_events.py ZmqEventPublisher faithfully on the wire:
  PUB   multipart (topic, seq.to_bytes(8, "big"), msgpack(KVEventBatch)), seq = itertools.count()
  ROUTER replay: receives [client_id, b"", start_seq (8B BE)], sends every buffered
        (client_id, b"", topic, seq.to_bytes(8, "big"), payload) with seq >= start_seq, then
        (client_id, b"", b"", (-1).to_bytes(8, "big", signed=True), b"")
        (vLLM 0.32.0's framing, checked against the real publisher; older vLLM had no topic frame)
  one thread polls the replay socket and the command queue, like _publisher_thread.
Payload encodings (msgspec emulated with msgpack, omit_defaults honoured):
  "array-oldest"  [ts, [["BlockStored", hashes, parent, tokens, block_size, lora_id], ["BlockRemoved", hashes], ["AllBlocksCleared"]]]
  "array"         [ts, [["BlockStored", hashes, parent, tokens, block_size, lora_id, medium, lora_name], ["BlockRemoved", hashes, medium], …], dp_rank]
  "map"           {"ts", "events": [{"type": "BlockStored", …, "group_idx", "kv_cache_spec_kind"}, …], "data_parallel_rank"}
Hashes follow vllm/v1/core/kv_cache_utils.py maybe_convert_block_hash: a chained sha256 digest
(bytes), or int.from_bytes(digest, "big") & (2**64 - 1) when hash kind is "int".

Control: JSON lines on stdin, one JSON reply line per command on stdout (same "id"):
  {"cmd": "publish", "events": [...], "encoding": "map", "hash": "int", "drop": false} -> {"seq": n}
     event: {"stored": {"prefix": [...], "tokens": [...], "block_size": 16, "lora_name": null, "medium": "GPU"}}
            {"removed": {"prefix": [...], "blocks": [i, ...], "medium": "GPU"}}  (blocks of prefix's chain)
            {"cleared": {}}
     drop: buffer the batch but do not send it (a message lost between PUB and SUB)
  {"cmd": "publish_raw", "payload_hex": "..."} -> {"seq": n}
  {"cmd": "trim_buffer", "keep": n}   keep only the newest n buffered batches
  {"cmd": "restart"}                  a new engine: seq from 0, empty buffer (same sockets)
  {"cmd": "quit"}
"""
import hashlib
import itertools
import json
import queue
import sys
import threading
import time
from collections import deque

import msgpack
import zmq

BUFFER_STEPS = 10_000
END_SEQ = (-1).to_bytes(8, "big", signed=True)
NONE_HASH = hashlib.sha256(b"fake-vllm-none-hash").digest()


def chain(tokens, block_size, parent=NONE_HASH):
    """Digests of the full blocks of tokens, chained from parent (like hash_block_tokens)."""
    out = []
    for start in range(0, len(tokens) - block_size + 1, block_size):
        parent = hashlib.sha256(parent + json.dumps(tokens[start:start + block_size]).encode()).digest()
        out.append(parent)
    return out


def external(digest, kind):
    return int.from_bytes(digest, byteorder="big") & ((1 << 64) - 1) if kind == "int" else digest


def build_event(spec, encoding, kind):
    if "cleared" in spec:
        return {"type": "AllBlocksCleared"} if encoding == "map" else ["AllBlocksCleared"]
    if "stored" in spec:
        s = spec["stored"]
        bs = s.get("block_size", 16)
        prefix = chain(s.get("prefix", []), bs)
        new = chain(s["tokens"], bs, prefix[-1] if prefix else NONE_HASH)
        hashes = [external(h, kind) for h in new]
        parent = external(prefix[-1], kind) if prefix else None
        lora_name = s.get("lora_name")
        lora_id = 1 if lora_name else None
        medium = s.get("medium", "GPU")
        if encoding == "map":
            return {"type": "BlockStored", "block_hashes": hashes, "parent_block_hash": parent, "token_ids": s["tokens"],
                    "block_size": bs, "lora_id": lora_id, "medium": medium, "lora_name": lora_name,
                    "group_idx": 0, "kv_cache_spec_kind": "full_attention"}
        if encoding == "array":
            return ["BlockStored", hashes, parent, s["tokens"], bs, lora_id, medium, lora_name]
        return ["BlockStored", hashes, parent, s["tokens"], bs, lora_id]
    r = spec["removed"]
    digests = chain(r["prefix"], r.get("block_size", 16))
    hashes = [external(digests[i], kind) for i in r["blocks"]]
    medium = r.get("medium", "GPU")
    if encoding == "map":
        return {"type": "BlockRemoved", "block_hashes": hashes, "medium": medium, "group_idx": 0}
    if encoding == "array":
        return ["BlockRemoved", hashes, medium]
    return ["BlockRemoved", hashes]


def build_payload(cmd):
    encoding = cmd.get("encoding", "map")
    kind = cmd.get("hash", "int")
    events = [build_event(e, encoding, kind) for e in cmd.get("events", [])]
    if encoding == "map":
        batch = {"ts": time.time(), "events": events, "data_parallel_rank": 0}
    elif encoding == "array":
        batch = [time.time(), events, 0]
    else:
        batch = [time.time(), events]
    return msgpack.packb(batch, use_bin_type=True)


def read_commands(q):
    for line in sys.stdin:
        if line.strip():
            q.put(json.loads(line))
    q.put({"cmd": "quit"})


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    topic = sys.argv[1].encode() if len(sys.argv) > 1 else b""
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.set_hwm(100_000)
    pub_port = pub.bind_to_random_port("tcp://127.0.0.1")
    replay = ctx.socket(zmq.ROUTER)
    replay_port = replay.bind_to_random_port("tcp://127.0.0.1")
    buffer = deque(maxlen=BUFFER_STEPS)
    seq_gen = itertools.count()
    commands = queue.Queue()
    threading.Thread(target=read_commands, args=(commands,), daemon=True).start()
    reply({"ready": True, "pub": f"tcp://127.0.0.1:{pub_port}", "replay": f"tcp://127.0.0.1:{replay_port}"})

    while True:
        if replay.poll(0):
            frame = replay.recv_multipart()
            if len(frame) == 3:
                client_id, _, start_seq_bytes = frame
                start_seq = int.from_bytes(start_seq_bytes, "big")
                for seq, buf in buffer:
                    if seq >= start_seq:
                        replay.send_multipart((client_id, b"", topic, seq.to_bytes(8, "big"), buf))
                replay.send_multipart((client_id, b"", b"", END_SEQ, b""))
        try:
            cmd = commands.get(timeout=0.01)
        except queue.Empty:
            continue
        name = cmd["cmd"]
        out = {"id": cmd.get("id")}
        if name in ("publish", "publish_raw"):
            payload = bytes.fromhex(cmd["payload_hex"]) if name == "publish_raw" else build_payload(cmd)
            seq = next(seq_gen)
            if not cmd.get("drop"):
                pub.send_multipart((topic, seq.to_bytes(8, "big"), payload))
            buffer.append((seq, payload))
            out["seq"] = seq
        elif name == "trim_buffer":
            while len(buffer) > cmd["keep"]:
                buffer.popleft()
        elif name == "restart":
            seq_gen = itertools.count()
            buffer.clear()
        elif name == "quit":
            break
        reply(out)
    pub.close(linger=0)
    replay.close(linger=0)


if __name__ == "__main__":
    main()
