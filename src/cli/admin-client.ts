/** Talks to a running router's admin port (the embedded map lives in that process). */
import type { CacheIndex } from "../state/cache-index";

import type { WorkerLoad } from "../routing/worker-view";

export interface AdminWorker {
  readonly id: string;
  readonly address: string;
  readonly blocks: number;
  readonly speculative: number;
  readonly inFlight: number;
  /** The router's load view of the worker (its ledger combined with the scraped /metrics). */
  readonly load: WorkerLoad | null;
  readonly candidate: boolean;
  readonly reporting: {
    readonly epoch: string;
    readonly appliedSeq: number;
    readonly lastSeenMs: number;
    readonly stale: boolean;
    readonly needsResync: boolean;
    readonly gaps: number;
    readonly resyncs: number;
  } | null;
}

export class AdminClient {
  constructor(private readonly baseUrl: string) {}

  static fromListen(listen: string): AdminClient {
    return new AdminClient(`http://${listen}`);
  }

  async workers(): Promise<{ entries: number; workers: AdminWorker[] }> {
    return (await this.request("GET", "/debug/workers")) as { entries: number; workers: AdminWorker[] };
  }

  /** A read-only CacheIndex view whose lookups go to the running router. */
  lookupIndex(): Pick<CacheIndex, "lookup" | "addSpeculative"> {
    return {
      lookup: async (keys, workers) => new Map(Object.entries((await this.request("POST", "/debug/lookup", { keys, workers })) as Record<string, number>)),
      addSpeculative: async () => undefined,
    };
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, { method, ...(body ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}), signal: AbortSignal.timeout(5_000) });
    } catch (err) {
      throw new Error(`cannot reach the router's admin server at ${this.baseUrl}: ${(err as Error).message}`);
    }
    if (!res.ok) throw new Error(`${method} ${this.baseUrl}${path} answered ${res.status}: ${await res.text()}`);
    return res.json();
  }
}
