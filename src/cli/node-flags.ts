/**
 * The V8 flags the router's process runs with (the Docker image, the systemd unit, `npm start`,
 * `make serve` and `stack` pass them on node's command line; `serve` warns when they are
 * missing). They can only be given at start: V8 sizes its heap once. Node refuses
 * --initial-old-space-size in NODE_OPTIONS, so the launchers name node itself.
 *
 * V8 starts marking for a full collection once the old generation's room before its limit is no
 * more than the young generation's capacity, two semi-spaces (Heap::IncrementalMarkingLimitReached),
 * and after each mark-compact it sets that limit to max(live × factor, live + 8 MB) plus one
 * semi-space (MemoryController::BoundAllocationLimit). The router's event loop keeps a small heap
 * (20-30 MB live: the memory index lives in typed arrays outside it), so the room after a
 * mark-compact was hardly more than the young generation: beside a stream of large prompts the
 * event loop marked again at once, a mark-compact every ~150-450 ms with 5-17 ms pauses — with
 * the default 16 MB semi-spaces and with 8 MB alike (a `serve` process, docs/benchmark.md round 9).
 *
 * --initial-old-space-size=64 (MB): V8 keeps the limit at 64 MB at least ("skip full GCs below
 * that threshold"): the old generation has to grow to ~48 MB before marking starts, at the cost
 * of a heap that may reach 64 MB before it is collected.
 * --max-semi-space-size=8 (MB): a young generation of 16 MB, so that room stays 30+ MB for a
 * live heap up to ~30 MB (with 16 MB semi-spaces it would take 32 of it).
 */
export const ROUTER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=8", "--initial-old-space-size=64"];

/** The flags of ROUTER_NODE_FLAGS that node was not started with (neither on its command line nor in NODE_OPTIONS), by name. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(flagName));
  return ROUTER_NODE_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/** "--max-semi-space-size=8" and "--max_semi_space_size" name the same flag. */
function flagName(arg: string): string {
  return arg.split("=")[0].replaceAll("_", "-");
}
