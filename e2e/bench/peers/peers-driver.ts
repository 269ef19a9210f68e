/**
 * Plays a workload through one front as its users would: first turns at their arrival times,
 * each follow-up a think time after its predecessor's reply (both scaled by the replicas' time
 * scale), every request a plain OpenAI chat body plus, unless told not to, an
 * `x-session-id: <conversation>` header (what a chat app that knows its sessions sends; only
 * vllm-router's sticky_least_loaded reads it).
 * A failed request still releases its follow-ups, as a user would go on.
 *
 * Per request it keeps what the replica reported (usage.prompt_tokens_details.cached_tokens and
 * the simulated TTFT in usage.sim_timing, model ms), which replica served (x-sim-replica), and the
 * router's added wall time: what the client saw minus what the replica spent (x-sim-wall-ms).
 */
import type { BenchRequest, Workload } from "../../../src/bench/workloads/workload";
import { DEBUG_HEADERS } from "../../../src/extproc/decision-response";
import type { Front } from "./fronts";

export interface PeerRecord {
  readonly id: string;
  /** null: served; else why it failed. */
  readonly error: string | null;
  readonly replica: string | null;
  readonly promptTokens: number;
  /** The prompt as the workload tokenized it: a different count means the router changed the prompt. */
  readonly expectedPromptTokens: number;
  readonly cachedTokens: number;
  /** Simulated (model) ms. */
  readonly ttftMs: number;
  readonly e2eMs: number;
  /** Wall ms the client waited, and the part the replica spent on it. */
  readonly clientWallMs: number;
  readonly replicaWallMs: number | null;
  /** Wall ms the request was sent later than planned (the machine falling behind the scaled clock). */
  readonly lateMs: number;
  /** prefix-router's decision ("hit", "miss", with its reason when there is one) and its decision time (µs). */
  readonly decision: string | null;
  readonly decisionUs: number | null;
}

interface SimUsage {
  readonly prompt_tokens: number;
  readonly prompt_tokens_details?: { readonly cached_tokens?: number };
  readonly sim_timing?: { readonly ttft_ms: number; readonly e2e_ms: number };
}

export interface DriveResult {
  readonly records: readonly PeerRecord[];
  readonly wallS: number;
}

export interface DriveOptions {
  readonly timeScale: number;
  /** Send `x-session-id: <conversation>` (default true). */
  readonly sessionId?: boolean;
  readonly progress?: (done: number, total: number) => void;
}

export async function drive(workload: Workload, front: Front, options: DriveOptions): Promise<DriveResult> {
  const { timeScale, progress } = options;
  const sessionId = options.sessionId ?? true;
  const followUps = new Map<string, BenchRequest[]>();
  for (const r of workload.requests) if (r.after) followUps.set(r.after.id, [...(followUps.get(r.after.id) ?? []), r]);
  const records: PeerRecord[] = [];
  const total = workload.requests.length;
  const t0 = performance.now();

  await new Promise<void>((allDone) => {
    const schedule = (req: BenchRequest, delayMs: number) => {
      const planned = performance.now() + delayMs;
      setTimeout(() => void send(req, planned), delayMs);
    };
    const finish = (record: PeerRecord, req: BenchRequest) => {
      records.push(record);
      progress?.(records.length, total);
      for (const next of followUps.get(req.id) ?? []) schedule(next, next.after!.thinkMs * timeScale);
      if (records.length === total) allDone();
    };
    const send = async (req: BenchRequest, planned: number) => {
      const lateMs = Math.max(0, performance.now() - planned);
      const base = { id: req.id, expectedPromptTokens: req.promptTokens, lateMs };
      try {
        const reply = await front.send(req.path, req.body(), sessionId ? { "x-session-id": req.session } : {});
        const header = (name: string) => (typeof reply.headers[name] === "string" ? (reply.headers[name] as string) : null);
        const usage = reply.status === 200 ? (JSON.parse(reply.body) as { usage?: SimUsage }).usage : undefined;
        if (!usage?.sim_timing) throw new Error(`HTTP ${reply.status}: ${reply.body.slice(0, 200)}`);
        const replicaWall = header("x-sim-wall-ms");
        finish(
          {
            ...base,
            error: null,
            replica: header("x-sim-replica"),
            promptTokens: usage.prompt_tokens,
            cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
            ttftMs: usage.sim_timing.ttft_ms,
            e2eMs: usage.sim_timing.e2e_ms,
            clientWallMs: reply.wallMs,
            replicaWallMs: replicaWall === null ? null : Number(replicaWall),
            decision: decisionOf(header(DEBUG_HEADERS.decision), header(DEBUG_HEADERS.reason)),
            decisionUs: header(DEBUG_HEADERS.decisionMicros) === null ? null : Number(header(DEBUG_HEADERS.decisionMicros)),
          },
          req,
        );
      } catch (err) {
        const failed = { error: (err as Error).message, replica: null, promptTokens: 0, cachedTokens: 0, ttftMs: NaN, e2eMs: NaN, clientWallMs: NaN, replicaWallMs: null, decision: null, decisionUs: null };
        finish({ ...base, ...failed }, req);
      }
    };
    for (const r of workload.requests) if (r.arrivalMs !== null) schedule(r, r.arrivalMs * timeScale);
  });
  return { records, wallS: (performance.now() - t0) / 1000 };
}

function decisionOf(outcome: string | null, reason: string | null): string | null {
  if (outcome === null) return reason;
  return reason === null ? outcome : `${outcome}/${reason}`;
}
