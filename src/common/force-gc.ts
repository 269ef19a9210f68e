/**
 * A full garbage collection on demand, for memory tests and benchmarks: uses `global.gc` when node
 * runs with --expose-gc, otherwise turns the flag on at run time and fetches `gc` from a fresh context.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let cached: (() => void) | undefined;

export function forceGc(): void {
  if (!cached) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) cached = exposed;
    else {
      setFlagsFromString("--expose-gc");
      cached = runInNewContext("gc") as () => void;
    }
  }
  cached();
  cached();
}

/** V8 heap in use after a full collection, in bytes. */
export function heapAfterGc(): number {
  forceGc();
  return process.memoryUsage().heapUsed;
}
