/**
 * Gateway API Inference Extension subset hint: Envoy may restrict the pick to a list of
 * endpoints in metadata_context.filter_metadata["envoy.lb.subset_hint"]
 * ["x-gateway-destination-endpoint-subset"] (a list of "ip:port" strings).
 * Absent → no restriction (null). Present but empty → nothing is eligible ([]).
 */
import type { ProcessingRequest, StructValue } from "./messages";

export const SUBSET_NAMESPACE = "envoy.lb.subset_hint";
export const SUBSET_KEY = "x-gateway-destination-endpoint-subset";

export function readSubsetHint(request: ProcessingRequest): string[] | null {
  const value: StructValue | undefined = request.metadata_context?.filter_metadata?.[SUBSET_NAMESPACE]?.fields?.[SUBSET_KEY];
  if (!value) return null;
  if (value.listValue) return (value.listValue.values ?? []).flatMap((v) => (typeof v.stringValue === "string" ? splitEndpoints(v.stringValue) : []));
  if (typeof value.stringValue === "string") return splitEndpoints(value.stringValue);
  return [];
}

/** Entries may carry several comma-separated endpoints. */
function splitEndpoints(s: string): string[] {
  return s.split(",").map((e) => e.trim()).filter((e) => e.length > 0);
}
