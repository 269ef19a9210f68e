/**
 * A consistent-hash ring: `virtualNodes` points per worker, placed by hashing "id#v". Built once
 * per distinct worker list (memoised by the caller). walk() visits distinct workers clockwise
 * from a 32-bit point — the order bounded-load hashing tries them in.
 */
import { fnv1a32 } from "../worker-view";
import { mix32 } from "./routing-policy";

export class HashRing {
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;
  readonly size: number;

  constructor(workerIds: readonly string[], virtualNodes: number) {
    if (workerIds.length > 0xffff) throw new RangeError("too many workers for a ring");
    this.size = workerIds.length;
    const entries: [number, number][] = [];
    workerIds.forEach((id, w) => {
      for (let v = 0; v < virtualNodes; v++) entries.push([mix32(fnv1a32(`${id}#${v}`)), w]);
    });
    entries.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.points = Uint32Array.from(entries, (e) => e[0]);
    this.owners = Uint16Array.from(entries, (e) => e[1]);
  }

  /** Worker indexes in clockwise order from `point`, each once, until `visit` returns true. */
  walk(point: number, visit: (worker: number) => boolean): void {
    const n = this.points.length;
    if (n === 0) return;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid] < point) lo = mid + 1;
      else hi = mid;
    }
    const seen = new Uint8Array(this.size);
    let distinct = 0;
    for (let i = 0; i < n && distinct < this.size; i++) {
      const w = this.owners[(lo + i) % n];
      if (seen[w]) continue;
      seen[w] = 1;
      distinct++;
      if (visit(w)) return;
    }
  }
}
