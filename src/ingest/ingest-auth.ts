/**
 * Per-worker bearer tokens for the ingest API (gRPC metadata `authorization: Bearer <token>`).
 * A missing or unknown token is UNAUTHENTICATED; a valid token pushing for another worker is
 * PERMISSION_DENIED. Tokens come from the config or from the environment variable it names, and
 * must differ between workers (checked again here, once the variables are read).
 */
import { timingSafeEqual } from "node:crypto";
import type { WorkerConfig } from "../config/schema";

export type AuthVerdict = { readonly ok: true } | { readonly ok: false; readonly code: "unauthenticated" | "permission-denied"; readonly message: string };

/** Who presented the token: a worker id, "*" when auth is off, or a failure. */
export type Caller = { readonly ok: true; readonly worker: string } | { readonly ok: false; readonly code: "unauthenticated"; readonly message: string };

export class IngestAuth {
  private readonly tokens: ReadonlyArray<{ worker: string; token: Buffer }>;

  /**
   * Throws when a worker names a token environment variable that is not set, or when two workers
   * end up with one token (startup errors).
   */
  constructor(
    workers: readonly WorkerConfig[],
    private readonly required: boolean,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.tokens = workers.flatMap((w) => {
      const token = w.ingestToken ?? (w.ingestTokenEnv ? env[w.ingestTokenEnv] : undefined);
      if (w.ingestTokenEnv && !token) throw new Error(`workers[${w.id}].ingestTokenEnv: environment variable ${w.ingestTokenEnv} is not set`);
      return token ? [{ worker: w.id, token: Buffer.from(token) }] : [];
    });
    const owners = new Map<string, string>();
    for (const t of this.tokens) {
      const owner = owners.get(t.token.toString());
      if (owner !== undefined) {
        const env = workers.find((w) => w.id === t.worker)?.ingestTokenEnv;
        throw new Error(`workers[${t.worker}].${env ? `ingestTokenEnv (${env})` : "ingestToken"}: the same token as worker ${owner}; each worker needs its own`);
      }
      owners.set(t.token.toString(), t.worker);
    }
  }

  /** Step 1: who is calling (UNAUTHENTICATED when nobody we know). */
  authenticate(authorization: string | undefined): Caller {
    if (!this.required) return { ok: true, worker: "*" };
    const match = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? "");
    if (!match) return { ok: false, code: "unauthenticated", message: "missing bearer token (metadata authorization: Bearer <token>)" };
    const presented = Buffer.from(match[1]);
    // Compare against every token so timing does not reveal which worker a token belongs to.
    let owner: string | undefined;
    for (const t of this.tokens) if (t.token.length === presented.length && timingSafeEqual(t.token, presented)) owner = t.worker;
    if (owner === undefined) return { ok: false, code: "unauthenticated", message: "unknown bearer token" };
    return { ok: true, worker: owner };
  }

  /** Step 2 (after validation): may this caller push for `worker`? */
  authorize(caller: { worker: string }, worker: string): AuthVerdict {
    if (caller.worker === "*" || caller.worker === worker) return { ok: true };
    return { ok: false, code: "permission-denied", message: `this token belongs to another worker, not ${worker}` };
  }
}
