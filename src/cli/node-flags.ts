/**
 * The V8 flags the router's process runs with (the Docker image, the systemd unit, `npm start`,
 * `make serve` and `stack` pass them; `serve` warns when they are missing). They can only be
 * given at start (node's command line or NODE_OPTIONS): V8 sizes its heap once.
 *
 * --max-semi-space-size=8 (MB): V8 starts marking for a full collection whenever the old
 * generation (or the heap with its external memory) has less room left before its limit than the
 * young generation's capacity (Heap::IncrementalMarkingLimitReached). The router's event loop keeps a small heap (~30 MB:
 * the memory index lives in typed arrays outside it), and beside a stream of large prompts the
 * default young generation (16 MB semi-spaces) outgrew that room: the event loop ran a
 * mark-compact every ~150-200 ms (5-12 ms pauses). With 8 MB semi-spaces the same load ran none,
 * only scavenges of ~1.5 ms (docs/benchmark.md, round 9).
 */
export const ROUTER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=8"];

/** The flags of ROUTER_NODE_FLAGS that node was not started with (neither on its command line nor in NODE_OPTIONS), by name. */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(flagName));
  return ROUTER_NODE_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/** "--max-semi-space-size=8" and "--max_semi_space_size" name the same flag. */
function flagName(arg: string): string {
  return arg.split("=")[0].replaceAll("_", "-");
}
