/**
 * The driver bench's table as a chart, drawn by hand as SVG: forwarding rate (Mpps, one core,
 * both directions) against batch size on a log2 axis, Deno beside C for each ring kind, as
 * ixy-languages draws its batch-size figure.
 *
 * @module
 */

/** One line of the chart. */
export interface Series {
  /** Legend text. */
  label: string;
  /** Stroke colour. */
  color: string;
  /** Dashed line. */
  dashed: boolean;
  /** [batch size, Mpps] points. */
  points: [number, number][];
}

const W = 720;
const H = 420;
const LEFT = 64;
const RIGHT = 200;
const TOP = 48;
const BOTTOM = 56;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A "nice" axis maximum and step for values up to `max`. */
function niceScale(max: number): { top: number; step: number } {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  return { top: Math.ceil(max / step) * step, step };
}

/** The SVG text of a chart with `title`, a `subtitle` line and `series`. */
export function driverChart(title: string, subtitle: string, series: Series[]): string {
  const batches = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) =>
    a - b
  );
  const lo = Math.log2(batches[0]);
  const hi = Math.log2(batches[batches.length - 1]);
  const { top, step } = niceScale(Math.max(...series.flatMap((s) => s.points.map((p) => p[1]))));
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const x = (b: number): number => LEFT + ((Math.log2(b) - lo) / (hi - lo || 1)) * plotW;
  const y = (v: number): number => TOP + plotH - (v / top) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" ` +
      `viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${LEFT}" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${LEFT}" y="37" fill="#555">${esc(subtitle)}</text>`,
  );
  for (let v = 0; v <= top + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${LEFT}" y1="${yy}" x2="${LEFT + plotW}" y2="${yy}" stroke="#ddd"/>`,
      `<text x="${LEFT - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">` +
        `${+v.toFixed(2)}</text>`,
    );
  }
  for (let e = Math.ceil(lo); e <= hi; e++) {
    const b = 2 ** e;
    const xx = x(b).toFixed(1);
    out.push(
      `<line x1="${xx}" y1="${TOP}" x2="${xx}" y2="${TOP + plotH}" stroke="#f0f0f0"/>`,
      `<text x="${xx}" y="${TOP + plotH + 16}" text-anchor="middle">${b}</text>`,
    );
  }
  out.push(
    `<rect x="${LEFT}" y="${TOP}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${LEFT + plotW / 2}" y="${H - 14}" text-anchor="middle">Batch size</text>`,
    `<text transform="translate(16 ${TOP + plotH / 2}) rotate(-90)" text-anchor="middle">` +
      `Packet rate [Mpps]</text>`,
  );
  series.forEach((s, i) => {
    const path = s.points.map((p, j) =>
      `${j ? "L" : "M"}${x(p[0]).toFixed(1)} ${y(p[1]).toFixed(1)}`
    )
      .join(" ");
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    out.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    for (const p of s.points) {
      out.push(
        `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3.5" fill="${s.color}"/>`,
      );
    }
    const ly = TOP + 10 + i * 20;
    const lx = LEFT + plotW + 16;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" ` +
        `stroke-width="2"${dash}/>`,
      `<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${esc(s.label)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
