/** The one factory that turns `store:` config into a CacheIndex; exhaustive over backends. */
import type { RouterConfig } from "../config/schema";
import type { CacheIndex } from "./cache-index";
import { MemoryCacheIndex } from "./memory-cache-index";

export function createCacheIndex(store: RouterConfig["store"]): CacheIndex {
  switch (store.kind) {
    case "memory":
      return new MemoryCacheIndex({ maxEntries: store.maxEntries });
    default: {
      const unknown: never = store.kind;
      throw new Error(`unknown store kind ${String(unknown)}`);
    }
  }
}
