/**
 * Messages between tokenizer threads and the bulk encoder process (bulk-encoder.ts) over a local
 * socket: each one a 4-byte big-endian length, then the value as V8 serializes it (strings and
 * typed arrays travel as they are).
 */
import { deserialize, serialize } from "node:v8";

export type BulkRequest = { readonly id: number; readonly model: number; readonly texts: readonly string[] };
export type BulkReply = { readonly id: number; readonly ids: Uint32Array[] } | { readonly id: number; readonly error: string };

export function frame(value: BulkRequest | BulkReply): Buffer {
  const body = serialize(value);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Collects bytes as they arrive; yields each complete message (chunks are joined once per message). */
export class FrameReader<T> {
  private chunks: Buffer[] = [];
  private length = 0;
  /** Bytes of the message being read, header included; -1 before its header arrived. */
  private need = -1;

  *push(chunk: Buffer): Generator<T> {
    this.chunks.push(chunk);
    this.length += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.length < 4) return;
        this.need = 4 + this.joined().readUInt32BE(0);
      }
      if (this.length < this.need) return;
      const all = this.joined();
      const body = all.subarray(4, this.need);
      const rest = all.subarray(this.need);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.length = rest.length;
      this.need = -1;
      yield deserialize(body) as T;
    }
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0];
  }
}
