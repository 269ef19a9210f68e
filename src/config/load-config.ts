/**
 * Reads a YAML (or JSON) config file, validates it against the schema and resolves relative
 * paths against the config file's folder, falling back to the working directory (so the README's
 * `tokenizer: node_modules/...` works from the repository root).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { configSchema, type RouterConfig } from "./schema";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Formats zod issues as `key.path: reason (got value)` lines. */
function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string; input?: unknown }[], raw: unknown): string {
  return issues
    .map((issue) => {
      const key = issue.path.length ? issue.path.map(String).join(".") : "(root)";
      const value = valueAt(raw, issue.path);
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
  if (isAbsolute(path)) return path;
  const besideConfig = resolve(configDir, path);
  return existsSync(besideConfig) ? besideConfig : resolve(process.cwd(), path);
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
