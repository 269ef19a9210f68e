/**
 * Hand-written SVG charts (no dependency): a TTFT CDF per policy on a log time axis, and a
 * two-panel bar chart of hit rates and stale-route rates per policy.
 */
export const POLICY_COLORS: Readonly<Record<string, string>> = {
  "round-robin": "#9e9e9e",
  random: "#bcaaa4",
  "least-loaded": "#795548",
  "consistent-hash": "#ff9800",
  approximate: "#3f51b5",
  "prefix-router": "#d81b60",
  oracle: "#2e7d32",
};

const FONT = `font-family="Helvetica, Arial, sans-serif"`;

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const color = (name: string, i: number) => POLICY_COLORS[name] ?? `hsl(${(i * 67) % 360}, 60%, 45%)`;
const num = (x: number) => (Math.round(x * 10) / 10).toString();

export interface Series {
  readonly name: string;
  /** (x, cumulative fraction) points, x ascending. */
  readonly points: readonly (readonly [number, number])[];
}

/** Empirical CDFs on a log10 x axis from the smallest to the largest x of all series. */
export function cdfChart(title: string, xLabel: string, series: readonly Series[]): string {
  const W = 760, H = 440, L = 64, R = 180, T = 40, B = 56;
  const pw = W - L - R, ph = H - T - B;
  const xs = series.flatMap((s) => s.points.map((p) => p[0])).filter((x) => x > 0);
  const lo = niceBelow(Math.min(...xs, Infinity) || 1);
  const hi = Math.max(niceAbove(Math.max(...xs, 0) || 10), lo * 10);
  const sx = (x: number) => L + ((Math.log10(Math.max(x, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * pw;
  const sy = (y: number) => T + (1 - y) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${L}" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  for (let d = Math.pow(10, Math.floor(Math.log10(lo))); d <= hi * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) {
      const x = d * m;
      if (x < lo * 0.9999 || x > hi * 1.0001) continue;
      out.push(`<line x1="${num(sx(x))}" y1="${T}" x2="${num(sx(x))}" y2="${T + ph}" stroke="${m === 1 ? "#ccc" : "#eee"}"/>`);
      out.push(`<text x="${num(sx(x))}" y="${T + ph + 16}" text-anchor="middle">${x >= 1000 ? `${x / 1000}k` : x}</text>`);
    }
  }
  for (let y = 0; y <= 1.0001; y += 0.25) {
    out.push(`<line x1="${L}" y1="${num(sy(y))}" x2="${L + pw}" y2="${num(sy(y))}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 6}" y="${num(sy(y) + 4)}" text-anchor="end">${(y * 100).toFixed(0)}%</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 14}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle">fraction of requests ≤ x</text>`);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    let d = `M${num(sx(s.points[0][0]))},${num(sy(0))}`;
    let prevY = 0;
    for (const [x, y] of s.points) {
      d += `L${num(sx(x))},${num(sy(prevY))}L${num(sx(x))},${num(sy(y))}`;
      prevY = y;
    }
    out.push(`<path d="${d}" fill="none" stroke="${color(s.name, i)}" stroke-width="${s.name === "prefix-router" ? 2.5 : 1.6}"/>`);
    const ly = T + 10 + i * 20;
    out.push(`<line x1="${L + pw + 16}" y1="${ly}" x2="${L + pw + 40}" y2="${ly}" stroke="${color(s.name, i)}" stroke-width="3"/>`);
    out.push(`<text x="${L + pw + 46}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n");
}

export interface BarPanel {
  readonly title: string;
  /** One value (a fraction) per category, per series. */
  readonly series: readonly { readonly name: string; readonly values: readonly number[]; readonly color: string }[];
  /** Axis maximum (a fraction); default: the largest value (or threshold) rounded up. */
  readonly max?: number;
  /** A target drawn as a dashed line, e.g. 0.05 for "stale routes < 5%". */
  readonly threshold?: { readonly value: number; readonly label: string };
}

/** Side-by-side panels of grouped bars over the same categories (policies). */
export function barPanels(title: string, categories: readonly string[], panels: readonly BarPanel[]): string {
  const pw = 360, ph = 260, gap = 70, L = 56, T = 64, B = 110;
  const W = L + panels.length * (pw + gap), H = T + ph + B;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${L}" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  panels.forEach((p, k) => {
    const x0 = L + k * (pw + gap);
    const top = Math.max(1e-9, p.threshold ? p.threshold.value * 1.2 : 0, ...p.series.flatMap((s) => s.values));
    const max = p.max ?? niceCeil(top);
    const sy = (v: number) => T + ph - (Math.min(v, max) / max) * ph;
    out.push(`<text x="${x0}" y="${T - 22}" font-size="13" font-weight="bold">${escapeXml(p.title)}</text>`);
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      out.push(`<line x1="${x0}" y1="${num(sy(v))}" x2="${x0 + pw}" y2="${num(sy(v))}" stroke="#e0e0e0"/>`);
      out.push(`<text x="${x0 - 6}" y="${num(sy(v) + 4)}" text-anchor="end">${+(v * 100).toFixed(2)}%</text>`);
    }
    if (p.threshold) {
      const y = num(sy(p.threshold.value));
      out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + pw}" y2="${y}" stroke="#c62828" stroke-dasharray="6 4"/>`);
      out.push(`<text x="${x0 + pw}" y="${num(sy(p.threshold.value) - 5)}" text-anchor="end" fill="#c62828">${escapeXml(p.threshold.label)}</text>`);
    }
    const group = pw / categories.length;
    const bw = (group * 0.8) / p.series.length;
    categories.forEach((c, ci) => {
      p.series.forEach((s, si) => {
        const v = s.values[ci];
        const x = x0 + ci * group + group * 0.1 + si * bw;
        out.push(`<rect x="${num(x)}" y="${num(sy(v))}" width="${num(bw - 1)}" height="${num(T + ph - sy(v))}" fill="${s.color}"><title>${escapeXml(`${c} ${s.name}: ${(v * 100).toFixed(2)}%`)}</title></rect>`);
      });
      const cx = x0 + ci * group + group / 2;
      out.push(`<text transform="translate(${num(cx)} ${T + ph + 12}) rotate(40)" font-size="11">${escapeXml(c)}</text>`);
    });
    out.push(`<line x1="${x0}" y1="${T + ph}" x2="${x0 + pw}" y2="${T + ph}" stroke="#444"/>`);
    p.series.forEach((s, si) => {
      out.push(`<rect x="${x0 + si * 130}" y="${T + ph + 86}" width="12" height="12" fill="${s.color}"/>`);
      out.push(`<text x="${x0 + si * 130 + 16}" y="${T + ph + 96}">${escapeXml(s.name)}</text>`);
    });
  });
  out.push(`</svg>`);
  return out.join("\n");
}

/** The largest of 1, 2, 5 × 10^k at or below x. */
function niceBelow(x: number): number {
  const d = Math.pow(10, Math.floor(Math.log10(x)));
  return [5, 2, 1].map((m) => m * d).find((v) => v <= x) ?? d;
}

/** The smallest of 1, 2, 5 × 10^k at or above x. */
function niceAbove(x: number): number {
  const d = Math.pow(10, Math.floor(Math.log10(x)));
  return [1, 2, 5, 10].map((m) => m * d).find((v) => v >= x) ?? 10 * d;
}

function niceCeil(x: number): number {
  const steps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1];
  return steps.find((s) => s >= x) ?? Math.ceil(x);
}
