import { buildWorkload } from "./src/bench/workloads/build-workload";
import { PRODUCTION_SIGNALS, simulate } from "./src/bench/des/simulate";
import { replicaConfig } from "./src/bench/run-scenario";
import { summarizeRun } from "./src/bench/metrics/run-summary";
(async () => {
  const w = await buildWorkload({ kind: "chat", params: { seed: 1, durationS: 30, conversationsPerS: 2, thinkMeanMs: 15000 } });
  const cluster = { replicas: 4, replica: replicaConfig(4000), ...PRODUCTION_SIGNALS };
  for (const name of ["prefix-router", "round-robin"] as const) {
    const run = simulate(w, name, cluster, { seed: 1, window: { fromMs: 10000, untilMs: 30000 } });
    const s = summarizeRun(run);
    const per = new Map<string, number>();
    for (const r of run.records) per.set(r.worker, (per.get(r.worker) ?? 0) + 1);
    console.log(name, JSON.stringify(s.requestsPerReplica), [...per].join(" "), "ttft", s.ttftMs.mean.toFixed(1));
  }
})();
