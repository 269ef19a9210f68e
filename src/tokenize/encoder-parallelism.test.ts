import { describe, expect, it } from "vitest";
import { encoderParallelism } from "./encoder-parallelism";

describe("encoder parallelism", () => {
  it("is off in the router's process and on in the bulk encoder's unless the operator set it", () => {
    expect(encoderParallelism(undefined)).toEqual({ router: "false", bulk: "true" });
    expect(encoderParallelism("true")).toEqual({ router: "true", bulk: "true" });
    expect(encoderParallelism("0")).toEqual({ router: "0", bulk: "0" });
  });
});
