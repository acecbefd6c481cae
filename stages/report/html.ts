// Small, dependency-free HTML and SVG builders for the report. Every piece of text that can come
// from a config, a path or a class name goes through esc().

export function esc(v: unknown): string {
  return String(v).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export function fmt(x: number | undefined | null, digits = 2): string {
  return x === undefined || x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

export interface Series {
  label: string;
  points: Array<[number, number]>;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** A line chart as inline SVG, with axes, ticks and a legend. */
export function lineChart(
  title: string,
  series: Series[],
  opts: { xLabel?: string; yLabel?: string; width?: number; height?: number } = {},
): string {
  // The legend sits in its own column right of the plot (it used to cover the curves), and the
  // chart grows taller when the legend needs more room than the plot.
  const legend = 150;
  const W = (opts.width ?? 420) + legend;
  const H = Math.max(opts.height ?? 260, 26 + 8 + series.length * 13);
  const m = { l: 48, r: 12 + legend, t: 26, b: 38 };
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) return `<figure class="chart"><figcaption>${esc(title)}</figcaption><p class="muted">no data</p></figure>`;
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const ticks = (a: number, b: number) => [0, 0.25, 0.5, 0.75, 1].map((f) => a + f * (b - a));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`,
  );
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" class="t">${esc(title)}</text>`);
  parts.push(
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" class="ax"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" class="ax"/>`,
  );
  for (const v of ticks(x0, x1))
    parts.push(`<text x="${sx(v).toFixed(1)}" y="${H - m.b + 14}" text-anchor="middle" class="tk">${esc(+v.toPrecision(3))}</text>`);
  for (const v of ticks(y0, y1))
    parts.push(`<text x="${m.l - 4}" y="${(sy(v) + 3).toFixed(1)}" text-anchor="end" class="tk">${esc(+v.toPrecision(3))}</text>`);
  if (opts.xLabel) parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 4}" text-anchor="middle" class="tk">${esc(opts.xLabel)}</text>`);
  if (opts.yLabel)
    parts.push(
      `<text x="10" y="${(m.t + H - m.b) / 2}" transform="rotate(-90 10 ${(m.t + H - m.b) / 2})" text-anchor="middle" class="tk">${esc(opts.yLabel)}</text>`,
    );
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) return;
    const d = pts.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
    const c = PALETTE[i % PALETTE.length];
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.6"><title>${esc(s.label)}</title></path>`);
    // Markers keep short series visible: a one-epoch run is a single point, which a path cannot draw.
    if (pts.length <= 30)
      for (const [x, y] of pts) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.2" fill="${c}"/>`);
    parts.push(
      `<rect x="${W - legend + 4}" y="${m.t + 4 + i * 13}" width="9" height="9" fill="${c}"/><text x="${W - legend + 17}" y="${m.t + 12 + i * 13}" class="tk">${esc(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `<figure class="chart">${parts.join('')}</figure>`;
}

export function table(head: string[], rows: string[][], cls = ''): string {
  // Cells are passed pre-escaped (they may contain markup such as <sub>); headers are escaped here.
  return `<table class="${esc(cls)}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:2px}h2{font-size:17px;margin-top:30px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.muted{color:#777}.ci{color:#888;font-size:11px}
.better{background:#e8f6e8}.charts{display:flex;flex-wrap:wrap;gap:10px}.chart{margin:0}
svg .ax{stroke:#444}svg .t{font-size:12px;font-weight:600}svg .tk{font-size:10px;fill:#333}
.gallery{border-collapse:collapse}.gallery td{text-align:center;padding:2px}.gallery img{width:96px;height:96px;image-rendering:pixelated}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:320px;font-size:12px}
`;
