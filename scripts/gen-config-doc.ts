/** Writes docs/config.md from the config schema. Run: npm run docs:config */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigReference } from "../src/config/config-reference";

writeFileSync(join(__dirname, "..", "docs", "config.md"), renderConfigReference());
console.log("wrote docs/config.md");
