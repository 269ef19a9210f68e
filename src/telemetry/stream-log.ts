/** One log line per ext_proc stream: the request outcome, recorded once (house style 14). */
import type { StreamOutcome } from "../extproc/stream-outcome";
import type { Logger } from "./logger";

export function logStreamOutcome(logger: Logger, o: StreamOutcome): void {
  const r = o.result;
  const fields = {
    requestId: o.requestId,
    method: o.method,
    path: o.path,
    bodyMode: o.bodyMode,
    bodyBytes: o.bodyBytes,
    end: o.end,
    responseStatus: o.responseStatus,
    servedBy: o.servedBy,
    served: o.served,
    ...(r?.kind === "route"
      ? {
          outcome: r.outcome,
          worker: r.worker.id,
          model: r.model,
          blocks: `${r.matchedBlocks}/${r.totalBlocks}`,
          candidates: r.candidates,
          reason: r.reason,
          detail: r.detail,
          decisionMicros: r.decisionMicros,
        }
      : r?.kind === "reject"
        ? { outcome: "reject", reason: r.reason, detail: r.detail, decisionMicros: r.decisionMicros }
        : { outcome: "none" }),
  };
  if (o.error) logger.warn({ ...fields, error: o.error }, "ext_proc stream failed");
  else if (r?.kind === "route" && r.outcome === "fallback") logger.info(fields, "routed by fallback");
  else logger.debug(fields, "routed");
}
