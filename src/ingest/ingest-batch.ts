/**
 * Validates a pushed EventBatch / ResyncPage (proto-loader objects) into domain form. Nothing of
 * an invalid batch is applied: validation is all-or-nothing, before any write, and the message
 * names the problem (it becomes the INVALID_ARGUMENT details).
 */
import type { IngestConfig, RouterConfig } from "../config/schema";
import type { BlockKey } from "../prefix/block-keys";
import type { IndexOp } from "../state/cache-index";

export interface WireEvent {
  kind?: "stored" | "removed" | "cleared";
  stored?: { keys?: Buffer; parent?: Buffer };
  removed?: { keys?: Buffer };
  cleared?: Record<string, never>;
}

export interface WireBatch {
  worker_id?: string;
  model?: string;
  lora?: string;
  epoch?: string;
  seq?: string;
  block_size?: number;
  events?: WireEvent[];
  sent_at_ms?: string;
}

export interface WireResyncPage {
  worker_id?: string;
  model?: string;
  epoch?: string;
  seq?: string;
  block_size?: number;
  keys?: Buffer;
  last?: boolean;
}

export interface DomainBatch {
  readonly worker: string;
  readonly model: string;
  readonly lora: string;
  readonly epoch: string;
  readonly seq: number;
  readonly ops: readonly IndexOp[];
  readonly events: number;
  readonly keys: number;
  readonly sentAtMs: number | null;
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

type Limits = Pick<IngestConfig, "maxEventsPerBatch" | "maxKeysPerBatch">;

export class BatchValidator {
  private readonly modelsByWorker = new Map<string, Set<string>>();

  constructor(
    config: Pick<RouterConfig, "workers" | "models" | "blockSize">,
    private readonly limits: Limits,
  ) {
    for (const w of config.workers) {
      const names = new Set<string>();
      for (const m of config.models) if (w.models.includes(m.name) || m.aliases.some((a) => w.models.includes(a))) names.add(m.name);
      this.modelsByWorker.set(w.id, names);
    }
    this.blockSize = config.blockSize;
  }

  private readonly blockSize: number;

  /** Checks the fields every message shares: worker, model, epoch, seq, block size. */
  header(m: { worker_id?: string; model?: string; epoch?: string; seq?: string; block_size?: number }): Checked<{ worker: string; model: string; epoch: string; seq: number }> {
    const worker = m.worker_id ?? "";
    const served = this.modelsByWorker.get(worker);
    if (!served) return bad(`worker_id ${JSON.stringify(worker)} is not a configured worker`);
    const model = m.model ?? "";
    if (!served.has(model)) return bad(`model ${JSON.stringify(model)} is not served by worker ${worker} (serves: ${[...served].join(", ")})`);
    const epoch = m.epoch ?? "";
    if (epoch.length === 0 || epoch.length > 128) return bad("epoch must be 1-128 characters");
    const seq = Number(m.seq ?? "0");
    if (!Number.isSafeInteger(seq) || seq < 0) return bad(`seq ${m.seq} is out of range`);
    if (m.block_size !== this.blockSize) return bad(`block_size ${m.block_size ?? 0} disagrees with the router's blockSize ${this.blockSize}`);
    return { ok: true, value: { worker, model, epoch, seq } };
  }

  batch(b: WireBatch): Checked<DomainBatch> {
    const head = this.header(b);
    if (!head.ok) return head;
    const events = b.events ?? [];
    if (events.length > this.limits.maxEventsPerBatch) return bad(`${events.length} events exceed ingest.maxEventsPerBatch ${this.limits.maxEventsPerBatch}`);
    const ops: IndexOp[] = [];
    let keys = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (e.kind === "stored" || e.stored) {
        const parent = e.stored?.parent;
        if (parent && parent.length !== 0 && parent.length !== 8) return bad(`events[${i}].stored.parent must be 0 or 8 bytes, got ${parent.length}`);
        const decoded = decodeKeys(e.stored?.keys, `events[${i}].stored.keys`);
        if (!decoded.ok) return decoded;
        keys += decoded.value.length;
        ops.push(parent && parent.length === 8 ? { op: "add", keys: decoded.value, parent: parent.toString("hex") } : { op: "add", keys: decoded.value });
      } else if (e.kind === "removed" || e.removed) {
        const decoded = decodeKeys(e.removed?.keys, `events[${i}].removed.keys`);
        if (!decoded.ok) return decoded;
        keys += decoded.value.length;
        ops.push({ op: "remove", keys: decoded.value });
      } else if (e.kind === "cleared" || e.cleared) {
        ops.push({ op: "clear" });
      } else {
        return bad(`events[${i}] has no kind (stored, removed or cleared)`);
      }
      if (keys > this.limits.maxKeysPerBatch) return bad(`batch carries over ingest.maxKeysPerBatch ${this.limits.maxKeysPerBatch} keys`);
    }
    const sentAt = Number(b.sent_at_ms ?? "0");
    return {
      ok: true,
      value: { ...head.value, lora: b.lora ?? "", ops, events: events.length, keys, sentAtMs: sentAt > 0 && Number.isSafeInteger(sentAt) ? sentAt : null },
    };
  }
}

/** Splits concatenated 8-byte keys into hex keys. */
export function decodeKeys(bytes: Buffer | undefined, field: string): Checked<BlockKey[]> {
  if (!bytes || bytes.length === 0) return { ok: true, value: [] };
  if (bytes.length % 8 !== 0) return bad(`${field} must be a multiple of 8 bytes, got ${bytes.length}`);
  const hex = bytes.toString("hex");
  const keys: BlockKey[] = new Array(bytes.length / 8);
  for (let i = 0; i < keys.length; i++) keys[i] = hex.slice(i * 16, i * 16 + 16);
  return { ok: true, value: keys };
}

/** Concatenates hex keys into the wire's 8-byte form. */
export function encodeKeys(keys: readonly BlockKey[]): Buffer {
  return Buffer.from(keys.join(""), "hex");
}

function bad(message: string): { ok: false; message: string } {
  return { ok: false, message };
}
