/** `prefix-router check-config --config FILE`: validate a config and exit (0 = valid). */
import type { Command } from "commander";
import { loadCheckedConfig } from "./checked-config";
import { withConfigErrors } from "./config-errors";

export function registerCheckConfig(program: Command): void {
  program
    .command("check-config")
    .description("validate a config file (and load its tokenizers) and print the result; exits 2 when invalid")
    .requiredOption("-c, --config <file>", "YAML config file")
    .action((opts: { config: string }) =>
      withConfigErrors(() => {
        const config = loadCheckedConfig(opts.config);
        process.stdout.write(`config ${opts.config} is valid: ${config.models.length} model(s), ${config.workers.length} worker(s), store ${config.store.kind}\n`);
      }),
    );
}
