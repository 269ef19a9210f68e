/**
 * ioredis, loaded on first use rather than when a module that can use Redis is imported. Loading
 * it defines its VerbatimString (`class … extends String`), after which V8 takes a slower path for
 * string code in the whole thread: charCodeAt loops ran 3.5–4.5× slower on Node 20 (a 131 kB
 * prompt scanned in 1.07 ms instead of 0.29; hex-key parsing alike). A router on the embedded
 * in-memory map never loads it.
 */
import type IORedis from "ioredis";

let loaded: typeof IORedis | undefined;

/** The ioredis client class (its module is loaded on the first call). */
export function redisClientClass(): typeof IORedis {
  loaded ??= require("ioredis") as typeof IORedis;
  return loaded;
}
