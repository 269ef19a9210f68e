#!/usr/bin/env node
/** prefix-router's command line. Each command lives in cli/; this file only wires them. */
import { Command } from "commander";
import { registerCheckConfig } from "./cli/check-config";
import { registerExplain } from "./cli/explain";
import { registerInspect } from "./cli/inspect";
import { registerLoad } from "./cli/load";
import { registerServe } from "./cli/serve";
import { registerSim } from "./cli/sim";
import { registerStack } from "./cli/stack";
import { packageVersion } from "./cli/version";

export function buildProgram(): Command {
  const program = new Command("prefix-router")
    .description("Cache-aware router for vLLM replicas behind Envoy (ext_proc)")
    .version(packageVersion(), "-V, --version", "print the version")
    .showHelpAfterError();
  registerServe(program);
  registerCheckConfig(program);
  registerSim(program);
  registerExplain(program);
  registerInspect(program);
  registerStack(program);
  registerLoad(program);
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`prefix-router: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
