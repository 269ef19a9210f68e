/**
 * The config file as `serve` and `check-config` take it: valid against the schema, and every
 * model's tokenizer folder (and chat template) loaded once to prove it is there, readable and
 * usable. Any problem is a ConfigError — exit 2, which the systemd unit's
 * RestartPreventExitStatus=2 treats as "do not restart", instead of a crash loop.
 */
import { ConfigError, loadConfigFile } from "../config/load-config";
import type { RouterConfig } from "../config/schema";
import { loadModelFiles } from "../tokenize/model-files";

export function loadCheckedConfig(file: string): RouterConfig {
  const config = loadConfigFile(file);
  const problems: string[] = [];
  config.models.forEach((model, i) => {
    try {
      loadModelFiles(model);
    } catch (err) {
      // "model "q" (<path>): <reason>" → "<reason>", naming the file when it is not the folder itself.
      const reason = (err instanceof Error ? err.message : String(err)).replace(/^model "[^"]*" \(([^)]*)\): /, (_, path: string) => (path === model.tokenizer ? "" : `${path}: `));
      problems.push(`  models.${i}.tokenizer: ${reason} (got ${JSON.stringify(model.tokenizer)}; relative paths are relative to the config file)`);
    }
  });
  if (problems.length) throw new ConfigError(`invalid config file ${file}:\n${problems.join("\n")}`);
  return config;
}
