/** The one factory that turns `store:` config into a CacheIndex; exhaustive over backends. */
import type { RouterConfig } from "../config/schema";
import type { CacheIndex } from "./cache-index";
import { MemoryCacheIndex } from "./memory-cache-index";
import { RedisCacheIndex } from "./redis-cache-index";

/**
 * Does not wait for Redis: a router starts (and routes by the fallback policy) while its store is
 * unreachable, and uses the store as soon as it answers.
 */
export function createCacheIndex(store: RouterConfig["store"]): CacheIndex {
  switch (store.kind) {
    case "memory":
      return new MemoryCacheIndex({ maxEntries: store.maxEntries });
    case "redis":
      return new RedisCacheIndex({ url: store.url, namespace: store.namespace, commandTimeoutMs: store.commandTimeoutMs });
    default: {
      const unknown: never = store;
      throw new Error(`unknown store kind ${JSON.stringify(unknown)}`);
    }
  }
}
