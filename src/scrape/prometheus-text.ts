/**
 * Reads the few samples the router needs out of a Prometheus text exposition (format 0.0.4, what
 * vLLM's /metrics serves). Not a general parser: `# ` lines are skipped, each sample line is
 * `name{label="value",…} number [timestamp]`, label values may hold escaped quotes. Unknown names
 * cost one Map lookup; malformed lines are skipped, never thrown on.
 */
export interface PromSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Samples of the `wanted` metric names, by name (a name may have several label sets). */
export function readSamples(text: string, wanted: ReadonlySet<string>): Map<string, PromSample[]> {
  const out = new Map<string, PromSample[]>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.length === 0 || line.charCodeAt(0) === 35 /* # */) continue;
    const brace = line.indexOf("{");
    const space = line.indexOf(" ");
    const nameEnd = brace >= 0 && (space < 0 || brace < space) ? brace : space;
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!wanted.has(name)) continue;
    const parsed = parseRest(line, nameEnd);
    if (!parsed) continue;
    let list = out.get(name);
    if (!list) out.set(name, (list = []));
    list.push(parsed);
  }
  return out;
}

function parseRest(line: string, at: number): PromSample | null {
  const labels: Record<string, string> = {};
  let i = at;
  if (line[i] === "{") {
    i++;
    while (i < line.length && line[i] !== "}") {
      const eq = line.indexOf("=", i);
      if (eq < 0 || line[eq + 1] !== '"') return null;
      const key = line.slice(i, eq).trim();
      let j = eq + 2;
      let value = "";
      while (j < line.length && line[j] !== '"') {
        if (line[j] === "\\" && j + 1 < line.length) {
          const next = line[j + 1];
          value += next === "n" ? "\n" : next;
          j += 2;
        } else value += line[j++];
      }
      if (j >= line.length) return null;
      labels[key] = value;
      i = j + 1;
      if (line[i] === ",") i++;
    }
    if (line[i] !== "}") return null;
    i++;
  }
  const fields = line.slice(i).trim().split(/\s+/);
  const value = parseFloat(fields[0] ?? "");
  if (fields[0] === undefined || (Number.isNaN(value) && fields[0] !== "NaN")) return null;
  return { labels, value };
}
