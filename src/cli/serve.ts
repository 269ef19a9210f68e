/** `prefix-router serve --config FILE`: validate the config, then start the ext_proc server. */
import type { Command } from "commander";
import { loadCheckedConfig } from "./checked-config";
import { withConfigErrors } from "./config-errors";
import { missingNodeFlags } from "./node-flags";
import { startRouterService } from "../router-service";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("start the ext_proc server (and everything it needs) from a config file")
    .requiredOption("-c, --config <file>", "YAML config file (see README.md and docs/config.md)")
    .action((opts: { config: string }) => withConfigErrors(() => serve(opts.config)));
}

async function serve(file: string): Promise<void> {
  const config = loadCheckedConfig(file);
  const service = await startRouterService(config);
  const missing = missingNodeFlags();
  if (missing.length > 0) {
    service.logger.warn({ missing, fix: `node ${missing.join(" ")} dist/cli.js serve …` }, "node was started without the router's V8 flags: beside large prompts its event loop pauses for full collections (src/cli/node-flags.ts)");
  }
  const stop = (signal: string) => {
    service.logger.info({ signal }, "shutting down");
    service.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}
