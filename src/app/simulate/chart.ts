import type { SimReport } from "./report.js";

const W = 960;
const H = 520;
const M = { left: 80, right: 24, top: 56, bottom: 64 };
const LINES = [
  { key: "baseline", label: "naive partition:ip ids", color: "#d62728" },
  { key: "identity_map", label: "identity-map canonical ids", color: "#1f77b4" },
  { key: "truth", label: "devices in truth", color: "#2ca02c" },
] as const;

/** Device count over simulated time, truth vs baseline vs identity-map, as a standalone SVG. */
export function renderChart(r: SimReport): string {
  const pts = r.series;
  const hours = Math.max(1, pts.length ? pts[pts.length - 1]!.hour : 1);
  const top = niceCeil(Math.max(1, ...pts.map((p) => Math.max(p.baseline, p.identity_map, p.truth))));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (h: number) => M.left + (pw * h) / hours;
  const y = (v: number) => M.top + ph - (ph * v) / top;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<text x="${M.left}" y="24" font-size="16" font-weight="bold">${esc(
      `Device count over ${r.scenario.days} simulated days ` +
        `(${r.scenario.devices.toLocaleString("en-US")} devices, seed ${r.scenario.seed})`,
    )}</text>`,
  );
  for (let i = 0; i <= 5; i++) {
    const v = (top * i) / 5;
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#e5e5e5"/>`);
    out.push(
      `<text x="${M.left - 8}" y="${f(y(v) + 4)}" text-anchor="end">${Math.round(v).toLocaleString("en-US")}</text>`,
    );
  }
  const dayStep = hours > 24 * 14 ? 48 : 24;
  for (let h = 0; h <= hours; h += hours >= 48 ? dayStep : 6) {
    out.push(`<line x1="${f(x(h))}" x2="${f(x(h))}" y1="${M.top}" y2="${M.top + ph}" stroke="#f0f0f0"/>`);
    out.push(
      `<text x="${f(x(h))}" y="${M.top + ph + 18}" ` +
        `text-anchor="middle">${hours >= 48 ? `day ${h / 24}` : `${h} h`}</text>`,
    );
  }
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#333"/>`);
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#333"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 20}" text-anchor="middle">simulated time</text>`);
  out.push(`<text transform="translate(20 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">devices</text>`);
  for (const line of LINES) {
    const d = [{ hour: 0, v: 0 }, ...pts.map((p) => ({ hour: p.hour, v: p[line.key] }))]
      .map((p, i) => `${i ? "L" : "M"}${f(x(p.hour))} ${f(y(p.v))}`)
      .join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${line.color}" stroke-width="2.2" stroke-linejoin="round"/>`);
  }
  LINES.forEach((line, i) => {
    const ly = M.top + 14 + i * 20;
    const last = pts.length ? pts[pts.length - 1]![line.key] : 0;
    out.push(
      `<line x1="${M.left + 16}" x2="${M.left + 44}" y1="${ly}" y2="${ly}" stroke="${line.color}" stroke-width="3"/>`,
    );
    out.push(`<text x="${M.left + 52}" y="${ly + 4}">${esc(`${line.label}: ${last.toLocaleString("en-US")}`)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const f = (v: number) => v.toFixed(1);

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
