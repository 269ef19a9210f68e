/**
 * Renders the config reference (docs/config.md) from the schema itself, so the documentation
 * cannot drift: `npm run docs:config` writes it, and a test fails when the committed file differs.
 */
import { z } from "zod";
import { configSchema } from "./schema";

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  pattern?: string;
  minLength?: number;
}

interface Row {
  key: string;
  type: string;
  required: boolean;
  default: string;
  description: string;
}

export function renderConfigReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const rows: Row[] = [];
  walk(schema, "", true, rows);
  const lines = [
    "# Configuration reference",
    "",
    "<!-- Generated from src/config/schema.ts by `npm run docs:config`; do not edit by hand. -->",
    "",
    "The router reads one YAML file (`prefix-router serve --config FILE`). Unknown keys are errors;",
    "every error names the key, the value and the reason. Relative paths resolve against the",
    "config file's folder, then the working directory. `prefix-router check-config --config FILE`",
    "validates a file without starting anything.",
    "",
    "| key | type | required | default | description |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| \`${r.key}\` | ${r.type} | ${r.required ? "yes" : ""} | ${r.default} | ${escape(r.description)} |`),
    "",
  ];
  return lines.join("\n");
}

function walk(node: JsonSchema, path: string, required: boolean, rows: Row[]): void {
  const variants = node.oneOf ?? node.anyOf;
  if (variants && !node.properties) {
    if (path) rows.push(row(path, node, required, "one of the variants below"));
    for (const v of variants) {
      const tag = Object.entries(v.properties ?? {}).find(([, p]) => p.const !== undefined);
      walk({ ...v, description: v.description }, tag ? `${path}{${tag[0]}: ${String(tag[1].const)}}` : path, required, rows);
    }
    return;
  }
  if (node.properties) {
    if (path && !path.endsWith("}")) rows.push(row(path, node, required));
    for (const [key, child] of Object.entries(node.properties)) {
      const childPath = path ? `${path}.${key}` : key;
      walk(child, childPath, (node.required ?? []).includes(key), rows);
    }
    return;
  }
  if (node.type === "array" && node.items?.properties) {
    rows.push(row(path, node, required));
    walk(node.items, `${path}[]`, true, rows);
    return;
  }
  rows.push(row(path, node, required));
}

function row(key: string, node: JsonSchema, required: boolean, note?: string): Row {
  return { key, type: typeOf(node), required: required && node.default === undefined, default: node.default === undefined ? "" : `\`${JSON.stringify(node.default)}\``, description: [node.description, constraints(node), note].filter(Boolean).join("; ") };
}

function typeOf(node: JsonSchema): string {
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum) return node.enum.map((e) => `\`${JSON.stringify(e)}\``).join(" \\| ");
  if (node.type === "array") return `list of ${node.items ? typeOf(node.items) : "values"}`;
  if (node.oneOf || node.anyOf) return "object";
  return Array.isArray(node.type) ? node.type.join(" \\| ") : (node.type ?? "any");
}

function constraints(node: JsonSchema): string {
  const parts: string[] = [];
  if (node.minimum !== undefined) parts.push(`≥ ${node.minimum}`);
  if (node.exclusiveMinimum !== undefined) parts.push(`> ${node.exclusiveMinimum}`);
  if (node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER) parts.push(`≤ ${node.maximum}`);
  if (node.minLength !== undefined && node.minLength > 1) parts.push(`at least ${node.minLength} characters`);
  return parts.join(", ");
}

function escape(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}
