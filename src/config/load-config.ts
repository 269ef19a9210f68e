/**
 * Reads a YAML (or JSON) config file, validates it against the schema and resolves relative
 * paths (tokenizer folders, chat templates) against the config file's folder — never the working
 * directory, so a config means the same wherever the router is started from.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { configSchema, type RouterConfig } from "./schema";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** What a missing required key is for, and how it looks. */
const REQUIRED_KEYS: Readonly<Record<string, string>> = {
  extProc: 'the Envoy-facing ext_proc server, e.g. extProc: { listen: "127.0.0.1:9002" }',
  "extProc.listen": 'the address Envoy\'s cluster "prefix_router" points at, e.g. listen: "127.0.0.1:9002"',
  models: "the models routed, e.g. models: [{ name: qwen3, tokenizer: path/to/tokenizer-folder }]",
  workers: 'the vLLM replicas, e.g. workers: [{ id: w1, address: "127.0.0.1:8001", models: [qwen3] }]',
};

/** Formats zod issues as `key.path: reason (got value)` lines. */
function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string; code?: string; input?: unknown }[], raw: unknown): string {
  return issues
    .map((issue) => {
      const key = issue.path.length ? issue.path.map(String).join(".") : "(root)";
      const value = valueAt(raw, issue.path);
      if (value === undefined && issue.code === "invalid_type") return `  ${key}: missing: ${REQUIRED_KEYS[key] ?? issue.message}`;
      const shown = value === undefined ? "" : ` (got ${truncate(JSON.stringify(value))})`;
      return `  ${key}: ${issue.message}${shown}`;
    })
    .join("\n");
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = root;
  for (const segment of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

function truncate(s: string | undefined): string {
  if (s === undefined) return "undefined";
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Validates an already-parsed config object. Throws ConfigError naming every bad key. */
export function parseConfig(raw: unknown, source = "config"): RouterConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(`invalid ${source}:\n${describeIssues(result.error.issues, raw)}`);
  return result.data;
}

function resolvePath(path: string, configDir: string): string {
  return isAbsolute(path) ? path : resolve(configDir, path);
}

export function loadConfigFile(file: string): RouterConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  const config = parseConfig(raw, `config file ${file}`);
  const dir = dirname(resolve(file));
  return {
    ...config,
    models: config.models.map((m) => ({
      ...m,
      tokenizer: resolvePath(m.tokenizer, dir),
      ...(m.chatTemplate ? { chatTemplate: resolvePath(m.chatTemplate, dir) } : {}),
    })),
  };
}
