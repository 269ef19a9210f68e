import { describe, expect, it } from "vitest";
import type { RoutedRequest } from "../router/route-result";
import { destinationValue } from "./decision-response";
import type { ProcessingRequest } from "./messages";
import { classifyServed, readServedEndpoint } from "./served-endpoint";

const worker = (id: string, address: string) => ({ id, address, inFlight: 0 });
const routed = (fallbacks: ReturnType<typeof worker>[]): RoutedRequest => ({
  kind: "route",
  worker: worker("w1", "10.0.0.1:8000"),
  fallbacks,
  decidedBy: "cache",
  estimateMs: 20,
  outcome: "hit",
  reason: null,
  detail: null,
  model: "m",
  matchedBlocks: 1,
  totalBlocks: 1,
  candidates: 3,
  decisionMicros: 1,
  release: () => undefined,
});
const str = (v: string) => ({ stringValue: v });

describe("the destination and the served endpoint (endpoint-picker protocol)", () => {
  it("lists the pick, then at most `fallbacks` others in their order", () => {
    const r = routed([worker("w3", "10.0.0.3:8000"), worker("w2", "10.0.0.2:8000")]);
    expect(destinationValue(r, 0)).toBe("10.0.0.1:8000");
    expect(destinationValue(r, 1)).toBe("10.0.0.1:8000,10.0.0.3:8000");
    expect(destinationValue(r, 5)).toBe("10.0.0.1:8000,10.0.0.3:8000,10.0.0.2:8000");
  });

  it("reads the GIE metadata first, then Envoy's upstream.address attribute", () => {
    const attribute: ProcessingRequest = { attributes: { "envoy.filters.http.ext_proc": { fields: { "upstream.address": str("10.0.0.3:8000") } } } };
    expect(readServedEndpoint(attribute)).toBe("10.0.0.3:8000");
    const both: ProcessingRequest = { ...attribute, metadata_context: { filter_metadata: { "envoy.lb": { fields: { "x-gateway-destination-endpoint-served": str("10.0.0.2:8000") } } } } };
    expect(readServedEndpoint(both)).toBe("10.0.0.2:8000");
    expect(readServedEndpoint({})).toBeNull();
    expect(readServedEndpoint({ attributes: { "envoy.filters.http.ext_proc": { fields: { "upstream.address": str("") } } } })).toBeNull();
  });

  it("classifies where it was served against the pick and its fallbacks", () => {
    const r = routed([worker("w3", "10.0.0.3:8000")]);
    expect(classifyServed(r, "10.0.0.1:8000")).toBe("picked");
    expect(classifyServed(r, "10.0.0.3:8000")).toBe("fallback");
    expect(classifyServed(r, "10.0.0.2:8000")).toBe("elsewhere");
  });
});
