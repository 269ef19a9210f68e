import type { MethodDefinition } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { strippingCommonResponse } from "./decision-response";
import type { ProcessingRequest, ProcessingResponse } from "./messages";
import { constantAnswer, externalProcessorService } from "./proto";

const processMethod = () => externalProcessorService().Process as MethodDefinition<ProcessingRequest, ProcessingResponse>;

describe("constant answers", () => {
  it("are sent as the bytes an equal fresh answer serializes to, and cannot change", () => {
    const fresh = (): ProcessingResponse => ({ request_headers: { response: strippingCommonResponse() } });
    const constant = constantAnswer(fresh());
    const { responseSerialize, responseDeserialize } = processMethod();
    const bytes = responseSerialize(constant);
    expect(Buffer.compare(bytes, responseSerialize(fresh()))).toBe(0);
    expect(responseDeserialize(bytes)).toEqual(responseDeserialize(responseSerialize(fresh())));
    expect(Object.isFrozen(constant.request_headers!.response!.header_mutation!.remove_headers)).toBe(true);
    expect(() => (constant as { immediate_response?: unknown }).immediate_response = {}).toThrow(TypeError);
    // Any other answer is still serialized from its fields.
    const other: ProcessingResponse = { request_body: {} };
    expect(responseDeserialize(responseSerialize(other))).toEqual(responseDeserialize(responseSerialize({ request_body: {} })));
  });
});
