import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The version in package.json (two levels up from src/cli or dist/cli). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8")) as { version: string };
  return pkg.version;
}
