/**
 * Drives a workload through a live cluster the way a client behind Envoy would: for each request,
 * Envoy's ext_proc exchange with the real router (BUFFERED), then the HTTP request to the replica
 * the router picked, then the end of the ext_proc stream (which releases the router's load).
 * Arrivals keep the workload's timing, scaled by the replicas' time scale; follow-up turns arrive a
 * (scaled) think time after their predecessor completes.
 *
 * Time: TTFT = the router's real decision time + the replica's TTFT in model time (usage.sim_timing),
 * so HTTP overhead is not inflated by the time scale. The records have the DES runner's shape, so
 * the same summary and report code reads both.
 */
import { Agent, request as httpRequest } from "node:http";
import { splitHostPort } from "../../../src/common/host-port";
import { EnvoyExtProcClient } from "../../support/envoy-ext-proc-client";
import type { RequestRecord, RunResult } from "../../../src/bench/des/simulate";
import type { BenchRequest, Workload } from "../../../src/bench/workloads/workload";
import type { LiveCluster, LiveContender } from "./live-cluster";

interface SimUsage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  sim_timing: { ttft_ms: number; e2e_ms: number };
}

export async function runLive(
  workload: Workload,
  cluster: LiveCluster,
  contender: LiveContender,
  timeScale: number,
  progress?: (done: number, total: number) => void,
): Promise<RunResult> {
  const client = new EnvoyExtProcClient(cluster.router.extProc.address);
  // Idle sockets close before the replicas' 5 s keep-alive timeout (uvicorn's and Node's default), so a
  // request never goes out on a socket the server is closing ("socket hang up").
  const agent = new Agent({ keepAlive: true, maxSockets: 512, timeout: 4_000 });
  const records: RequestRecord[] = [];
  const followUps = new Map<string, BenchRequest[]>();
  for (const r of workload.requests) if (r.after) followUps.set(r.after.id, [...(followUps.get(r.after.id) ?? []), r]);
  const total = workload.requests.length;
  const t0 = Date.now();
  const modelNow = () => (Date.now() - t0) / timeScale;
  let skipped = 0;
  let failures = 0;

  const done = new Promise<void>((resolveAll) => {
    let finished = 0;
    const finish = (req: BenchRequest) => {
      finished++;
      progress?.(finished, total);
      for (const next of followUps.get(req.id) ?? []) setTimeout(() => void send(next), Math.max(0, next.after!.thinkMs * timeScale));
      if (finished === total) resolveAll();
    };
    const skip = (req: BenchRequest) => {
      // A failed request still releases its follow-ups (as a user would retry and go on).
      failures++;
      finish(req);
    };
    const send = async (req: BenchRequest) => {
      const arrivalMs = modelNow();
      try {
        const body = bodyFor(req);
        const t = process.hrtime.bigint();
        const ex = await client.process({ path: req.path, body, messageTimeoutMs: 30_000 });
        const decisionWallMs = Number(process.hrtime.bigint() - t) / 1e6;
        const address = ex.upstreamHeaders.get("x-gateway-destination-endpoint");
        if (!address) throw new Error(`no destination: ${JSON.stringify([...ex.upstreamHeaders])}`);
        const usage = await postJson(agent, address, req.path, body);
        await ex.complete(200);
        if (!usage) {
          skipped++;
          return skip(req);
        }
        const claimed = ex.upstreamHeaders.get("x-prefix-router-decision") === "hit" ? Number(ex.upstreamHeaders.get("x-prefix-router-blocks")!.split("/")[0]) : 0;
        const claimable = Math.min(claimed, Math.floor((usage.prompt_tokens - 1) / workload.blockSize));
        records.push({
          id: req.id,
          measured: true,
          session: req.session,
          worker: ex.upstreamHeaders.get("x-prefix-router-worker") ?? address,
          arrivalMs,
          firstTokenMs: arrivalMs + decisionWallMs + usage.sim_timing.ttft_ms,
          finishMs: arrivalMs + decisionWallMs + usage.sim_timing.e2e_ms,
          promptTokens: usage.prompt_tokens,
          cachedTokens: usage.prompt_tokens_details.cached_tokens,
          outputTokens: usage.completion_tokens,
          claimedBlocks: claimed,
          stale: claimed > 0 && Math.floor(usage.prompt_tokens_details.cached_tokens / workload.blockSize) < claimable,
          staleInFlight: false,
          guardTripped: ex.upstreamHeaders.get("x-prefix-router-reason") === "load-guard",
          decisionUs: Number(ex.upstreamHeaders.get("x-prefix-router-decision-us") ?? decisionWallMs * 1000),
        });
        finish(req);
      } catch (err) {
        if (failures < 3) process.stderr.write(`live request ${req.id} failed: ${(err as Error).message}\n`);
        skip(req);
      }
    };
    for (const r of workload.requests) if (r.arrivalMs !== null) setTimeout(() => void send(r), r.arrivalMs * timeScale);
  });
  await done;
  client.close();
  agent.destroy();
  const busyMs = cluster.replicas.map((r) => r.server.engine.metrics().busyMs);
  const makespanMs = modelNow();
  return {
    contender: contender as RunResult["contender"],
    records,
    skipped,
    busyMs,
    windowBusyMs: busyMs,
    window: { fromMs: 0, untilMs: makespanMs },
    makespanMs,
    wallMs: Date.now() - t0,
  };
}

/** The workload's body, with the tokens to generate and (when scripted) their ids for the sim. */
function bodyFor(req: BenchRequest): string {
  const body = JSON.parse(req.body()) as Record<string, unknown>;
  body.max_tokens = req.maxTokens;
  const out = req.outputTokens();
  if (out) body.sim_output_ids = Array.from(out);
  if (body.stream === true) body.stream_options = { include_usage: true };
  return JSON.stringify(body);
}

/** The usage of a JSON response, or of the usage chunk of an SSE stream (stream_options.include_usage). */
function usageOf(text: string): SimUsage | null {
  if (!text.startsWith("data:")) return (JSON.parse(text) as { usage: SimUsage }).usage;
  for (const event of text.split("\n\n")) {
    const data = event.startsWith("data: ") ? event.slice(6) : "";
    if (data.startsWith("{")) {
      const chunk = JSON.parse(data) as { usage?: SimUsage | null };
      if (chunk.usage) return chunk.usage;
    }
  }
  return null;
}

function postJson(agent: Agent, address: string, path: string, body: string): Promise<SimUsage | null> {
  const [host, port] = splitHostPort(address);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) return resolve(null); // e.g. a prompt that cannot fit a replica
        resolve(usageOf(Buffer.concat(chunks).toString("utf8")));
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}
