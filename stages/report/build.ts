// Turns collected stage outputs into the report's three files: report.html, summary.md, summary.json.
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ExperimentInfo } from '../../engine/contract.js';
import { SALIENCY_FILES, type Interval } from '../artifacts.js';
import type { Collected, EvaluationEntry } from './collect.js';
import { METRICS, metricLabel, metricScale as scaleOf, type MetricKey } from '../../ml/metrics/table.js';
import { esc, fmt, lineChart, STYLE, table, type Series } from './html.js';

const SUMMARY_METRICS = METRICS.filter((m) => m.inSummary);

export interface ReportParams {
  title?: string;
  /** How many images the gallery shows (each across every method and pooling). */
  gallery_images: number;
  /** Upper bound on the HTML size; the gallery is thinned to stay below it. */
  max_bytes: number;
  /** Bootstrap resamples for the paired GAP-vs-CA differences. */
  bootstrap: number;
  seed: number;
  /** The baseline method of the adjusted comparison (default `random`). */
  baseline?: string;
}

/** What is left of a CA − GAP difference once the baseline's CA − GAP is subtracted, image by image. */
export interface AdjustedDiff {
  baseline: string;
  /** Means over the images all four scores cover (so they may differ slightly from the row's gap/ca). */
  method_diff: number;
  baseline_diff: number;
  /** Mean of (CA − GAP)_method − (CA − GAP)_baseline, with its paired bootstrap interval. */
  diff: Interval;
}

export interface PairedRow {
  variant: string;
  method: string;
  metric: string;
  gap: number;
  ca: number;
  /** Mean of (CA − GAP) over the images both evaluated, with its bootstrap interval. */
  diff: Interval;
  /** Absent for the baseline itself and where either evaluation lacks the baseline. */
  adjusted?: AdjustedDiff;
}

/** Which CA-better differences remain once the baseline's difference is subtracted. */
export interface Adjustment {
  baseline: string;
  /** CA better than GAP (interval clear of 0), before and after the adjustment. */
  survive: RowRef[];
  /** CA better before the adjustment, not after: the baseline map gains as much. */
  vanish: RowRef[];
  /** CA better only after the adjustment (the baseline map loses under CA). */
  emerge: RowRef[];
  /** The same, in words (HTML and summary.md show these lines). */
  text: string[];
}

export interface RowRef {
  variant: string;
  method: string;
  metric: string;
}

export interface ReportSummary {
  format: 'ca-pipe.report/1';
  title: string;
  experiment?: { name: string; tool_version: string; variants: ExperimentInfo['variants'] };
  models: Array<{
    stage: string;
    variant: string;
    arch: string;
    head: string;
    heads: number;
    final_val_acc?: number;
    gap_val_acc?: number;
    epochs?: number;
  }>;
  evaluations: Array<{
    stage: string;
    variant: string;
    pooling: string;
    protocol: Record<string, unknown>;
    accuracy: { top1: number; top5: number; n: number };
    methods: Record<string, Record<string, Interval | Record<string, number>>>;
  }>;
  paired: PairedRow[];
  adjustment: Adjustment;
  sweep: Array<{ variant: string; values: Record<string, unknown>; headline: Record<string, number> }>;
  ignored_inputs: string[];
}

type PairFn = (a: number[], b: number[], opts: { B: number; seed: number }) => Interval;

/** Pairs GAP and CA evaluations of the same variant, method by method, image by image. */
export function pairedRows(c: Collected, pair: PairFn, p: ReportParams): PairedRow[] {
  const rows: PairedRow[] = [];
  const baseline = p.baseline ?? 'random';
  type Scores = Map<number, number>;
  // The adjusted difference is the paired difference of the two per-image differences, over the
  // images that have all four scores: the same bootstrap, resampling images.
  const adjust = (k: Scores, g: Scores, kb: Scores | undefined, gb: Scores | undefined): AdjustedDiff | undefined => {
    if (!kb || !gb) return undefined;
    const ids = [...k.keys()].filter((id) => g.has(id) && kb.has(id) && gb.has(id)).sort((x, y) => x - y);
    if (ids.length === 0) return undefined;
    const dm = ids.map((id) => k.get(id)! - g.get(id)!);
    const db = ids.map((id) => kb.get(id)! - gb.get(id)!);
    const d = pair(dm, db, { B: p.bootstrap, seed: p.seed });
    return { baseline, method_diff: mean(dm), baseline_diff: mean(db), diff: { mean: d.mean, lo: d.lo, hi: d.hi, n: d.n } };
  };
  const byVariant = new Map<string, EvaluationEntry[]>();
  for (const e of c.evaluations) byVariant.set(e.variant.alias, [...(byVariant.get(e.variant.alias) ?? []), e]);
  for (const [variant, evals] of byVariant) {
    const gap = evals.find((e) => e.summary.pooling === 'gap');
    const ca = evals.find((e) => e.summary.pooling === 'ca');
    if (!gap || !ca) continue;
    for (const method of Object.keys(ca.summary.methods)) {
      if (!gap.summary.methods[method]) continue;
      for (const m of METRICS) {
        const g = gap.perImage.get(method)?.get(m.key);
        const k = ca.perImage.get(method)?.get(m.key);
        if (!g || !k) continue;
        const ids = [...k.keys()].filter((id) => g.has(id)).sort((a, b) => a - b);
        if (ids.length === 0) continue;
        const a = ids.map((id) => k.get(id)!);
        const b = ids.map((id) => g.get(id)!);
        const diff = pair(a, b, { B: p.bootstrap, seed: p.seed });
        const row: PairedRow = {
          variant,
          method,
          metric: m.key,
          gap: mean(b),
          ca: mean(a),
          diff: { mean: diff.mean, lo: diff.lo, hi: diff.hi, n: diff.n },
        };
        const adjusted =
          method === baseline ? undefined : adjust(k, g, ca.perImage.get(baseline)?.get(m.key), gap.perImage.get(baseline)?.get(m.key));
        if (adjusted) row.adjusted = adjusted;
        rows.push(row);
      }
    }
  }
  return rows;
}

/** CA better than GAP for this metric: the whole interval on the metric's good side of 0. */
function caBetter(metric: string, iv: Interval): boolean {
  const dir = METRICS.find((m) => m.key === metric)?.direction ?? 'higher';
  return dir === 'higher' ? iv.lo > 0 : iv.hi < 0;
}

function ivText(iv: Interval, scale: number): string {
  return `${fmt(iv.mean * scale)} [${fmt(iv.lo * scale)}, ${fmt(iv.hi * scale)}]`;
}

/** Sorts the adjusted rows into gains that survive, vanish or appear, and says so in words. */
export function adjustment(rows: PairedRow[], baseline: string): Adjustment {
  const ref = (r: PairedRow): RowRef => ({ variant: r.variant, method: r.method, metric: r.metric });
  const name = (r: PairedRow) => `${r.method} ${r.metric}${r.variant ? ` (${r.variant})` : ''}`;
  const adj = rows.filter((r) => r.adjusted);
  const survive = adj.filter((r) => caBetter(r.metric, r.diff) && caBetter(r.metric, r.adjusted!.diff));
  const vanish = adj.filter((r) => caBetter(r.metric, r.diff) && !caBetter(r.metric, r.adjusted!.diff));
  const emerge = adj.filter((r) => !caBetter(r.metric, r.diff) && caBetter(r.metric, r.adjusted!.diff));
  const text: string[] = [];
  if (adj.length === 0) {
    text.push(`No variant has the ${baseline} baseline in both its GAP and its CA evaluation: no adjusted comparison.`);
  } else {
    const list = (rs: PairedRow[], which: 'adjusted' | 'raw') =>
      rs.map((r) => `${name(r)} ${ivText(which === 'adjusted' ? r.adjusted!.diff : r.diff, scaleOf(r.metric))}`).join('; ');
    text.push(
      survive.length
        ? `Gains of CA over GAP that survive the adjustment for the ${baseline} map (adjusted difference, 95 % CI clear of 0): ${list(survive, 'adjusted')}.`
        : `No gain of CA over GAP survives the adjustment for the ${baseline} map.`,
    );
    if (vanish.length)
      text.push(
        `Gains that do not survive it (the ${baseline} map gains about as much, so they come from the models, not the explanations; raw CA − GAP shown): ${list(vanish, 'raw')}.`,
      );
    if (emerge.length) text.push(`CA better only after the adjustment (the ${baseline} map loses under CA): ${list(emerge, 'adjusted')}.`);
  }
  return { baseline, survive: survive.map(ref), vanish: vanish.map(ref), emerge: emerge.map(ref), text };
}

function mean(v: number[]): number {
  const f = v.filter(Number.isFinite);
  return f.length ? f.reduce((s, x) => s + x, 0) / f.length : NaN;
}

function cell(iv: Interval | undefined, scale: number, digits = 2): string {
  if (!iv || !Number.isFinite(iv.mean)) return '–';
  return `${fmt(iv.mean * scale, digits)}<br><span class="ci">[${fmt(iv.lo * scale, digits)}, ${fmt(iv.hi * scale, digits)}]</span>`;
}

function metricsTable(c: Collected): string {
  const out: string[] = [];
  const variants = [...new Set(c.evaluations.map((e) => e.variant.alias))];
  for (const variant of variants) {
    const evals = c.evaluations
      .filter((e) => e.variant.alias === variant)
      .sort((a, b) => a.summary.pooling.localeCompare(b.summary.pooling) * -1);
    const methods = [...new Set(evals.flatMap((e) => Object.keys(e.summary.methods)))];
    const hasLoc = evals.some((e) => Object.values(e.summary.methods).some((m) => m.energy));
    const has = (key: MetricKey) => evals.some((e) => Object.values(e.summary.methods).some((m) => m[key]));
    const metrics = METRICS.filter((m) => (hasLoc || !m.needsRegion) && (!('optIn' in m) || has(m.key)));
    const head = ['method', ...evals.flatMap((e) => metrics.map((m) => `${e.summary.pooling.toUpperCase()} ${metricLabel(m)}`))];
    const rows = methods.map((method) => [
      esc(method),
      ...evals.flatMap((e) => metrics.map((m) => cell(e.summary.methods[method]?.[m.key], m.scale))),
    ]);
    rows.push(['top-1 accuracy', ...evals.flatMap((e) => metrics.map((_, i) => (i === 0 ? fmt(e.summary.accuracy.top1 * 100) : '')))]);
    out.push(`<h3>${variant ? `variant ${esc(variant)}` : 'results'}</h3>${table(head, rows, 'metrics')}`);
    const excluded = evals.flatMap((e) =>
      Object.entries(e.summary.methods).flatMap(([method, m]) =>
        Object.entries(m.excluded ?? {})
          .filter(([, n]) => n > 0)
          .map(([why, n]) => `${esc(e.summary.pooling.toUpperCase())} ${esc(method)}: ${n} ${esc(why)} map(s) left out`),
      ),
    );
    if (excluded.length) out.push(`<p class="muted">${excluded.join('; ')}</p>`);
  }
  return out.join('');
}

function pairedTable(rows: PairedRow[]): string {
  if (rows.length === 0) return '<p class="muted">No variant has both a GAP and a CA evaluation.</p>';
  const better = new Map<string, string>(METRICS.map((m) => [m.key, m.direction]));
  const baseline = rows.find((r) => r.adjusted)?.adjusted?.baseline;
  return table(
    ['variant', 'method', 'metric', 'GAP', 'CA', 'CA − GAP [95% CI]', 'n', `adjusted for ${baseline ?? 'the baseline'} [95% CI]`, 'n'],
    rows.map((r) => {
      const s = scaleOf(r.metric);
      const good = better.get(r.metric) === 'higher' ? r.diff.lo > 0 : r.diff.hi < 0;
      const a = r.adjusted;
      return [
        esc(r.variant || '–'),
        esc(r.method),
        esc(r.metric),
        fmt(r.gap * s),
        fmt(r.ca * s),
        `<span class="${good ? 'better' : ''}">${fmt(r.diff.mean * s)} [${fmt(r.diff.lo * s)}, ${fmt(r.diff.hi * s)}]</span>`,
        String(r.diff.n),
        a ? `<span class="${caBetter(r.metric, a.diff) ? 'better' : ''}">${ivText(a.diff, s)}</span>` : '–',
        a ? String(a.diff.n) : '',
      ];
    }),
  );
}

function adjustmentSection(a: Adjustment): string {
  const why = `<p class="muted">Adjusted = (CA − GAP for the method) − (CA − GAP for the ${esc(a.baseline)} map), image by image, with a paired bootstrap interval over the same images. The ${esc(a.baseline)} map says nothing about the image, so its CA − GAP difference measures what the change of model alone does to the metric (e.g. a better-calibrated classifier raises every insertion curve); only what remains after subtracting it can be credited to the explanation.</p>`;
  return `<div id="adjusted-comparison">${why}${a.text.map((t) => `<p>${esc(t)}</p>`).join('')}</div>`;
}

function trainingCharts(c: Collected): string {
  if (c.models.length === 0) return '<p class="muted">No trained model among the inputs.</p>';
  const label = (m: Collected['models'][number]) => `${m.stage}${m.variant.alias ? ` (${m.variant.alias})` : ''}`;
  const series = (f: (e: Collected['models'][number]['epochs'][number]) => number | undefined): Series[] =>
    c.models.map((m) => ({ label: label(m), points: m.epochs.map((e) => [e.epoch, f(e) ?? NaN] as [number, number]) }));
  return `<div class="charts" id="training-curves">${lineChart(
    'training loss',
    series((e) => e.loss),
    { xLabel: 'epoch' },
  )}${lineChart(
    'validation loss',
    series((e) => e.val_loss),
    { xLabel: 'epoch' },
  )}${lineChart(
    'validation accuracy',
    series((e) => e.val_acc),
    { xLabel: 'epoch' },
  )}</div>`;
}

function curveCharts(c: Collected): string {
  const charts: string[] = [];
  for (const which of ['insertion', 'deletion'] as const) {
    const series: Series[] = [];
    // An evaluation shared by all variants (e.g. the GAP branch of a sweep) is listed once per
    // variant for pairing; its curves are drawn once, unlabelled.
    const seen = new Map<string, number>();
    for (const e of c.evaluations) seen.set(e.key, (seen.get(e.key) ?? 0) + 1);
    const drawn = new Set<string>();
    for (const e of c.evaluations) {
      if (drawn.has(e.key)) continue;
      drawn.add(e.key);
      const alias = (seen.get(e.key) ?? 0) > 1 ? '' : e.variant.alias;
      for (const [method, cv] of Object.entries(e.curves)) {
        const ys = cv[which] ?? [];
        const n = ys.length - 1;
        series.push({
          label: `${e.summary.pooling.toUpperCase()} ${method}${alias ? ` ${alias}` : ''}`,
          points: ys.map((y, i) => [n > 0 ? i / n : 0, y]),
        });
      }
    }
    charts.push(lineChart(`mean ${which} curve`, series, { xLabel: 'fraction of pixels', yLabel: 'p(target)' }));
  }
  return `<div class="charts" id="insdel-curves">${charts.join('')}</div>`;
}

/** Images shown for every (pooling, method) column; thinned until the HTML budget holds. */
async function gallery(c: Collected, p: ReportParams, budget: number): Promise<{ html: string; images: number }> {
  const cols = c.saliency.flatMap((s) => s.meta.methods.map((m) => ({ s, method: m })));
  if (cols.length === 0) return { html: '<p class="muted">No saliency output among the inputs.</p>', images: 0 };
  const common = cols
    .map(({ s, method }) => new Set(s.meta.overlays.filter((o) => o.method === method).map((o) => o.id)))
    .reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
  // The saliency stage lists overlays class-interleaved; keeping its order keeps the gallery varied.
  const order = [...new Set(cols[0]!.s.meta.overlays.map((o) => o.id))];
  let ids = order.filter((id) => common.has(id)).slice(0, p.gallery_images);
  const uri = new Map<string, string>();
  let bytes = 0;
  const kept: number[] = [];
  for (const id of ids) {
    let rowBytes = 0;
    const row: Array<[string, string]> = [];
    for (const { s, method } of cols) {
      const o = s.meta.overlays.find((x) => x.id === id && x.method === method)!;
      const file = join(s.dir, o.file.startsWith(SALIENCY_FILES.overlayDir) ? o.file : join(SALIENCY_FILES.overlayDir, o.file));
      const b64 = (await readFile(file)).toString('base64');
      rowBytes += b64.length;
      row.push([`${s.key}:${id}:${method}`, `data:image/png;base64,${b64}`]);
    }
    if (bytes + rowBytes > budget) break;
    bytes += rowBytes;
    kept.push(id);
    for (const [k, v] of row) uri.set(k, v);
  }
  ids = kept;
  const head = `<tr><th>image</th>${cols.map(({ s, method }) => `<th>${esc(s.meta.pooling.toUpperCase())}<br>${esc(method)}${s.variant.alias ? `<br><span class="ci">${esc(s.variant.alias)}</span>` : ''}</th>`).join('')}</tr>`;
  const rows = ids.map(
    (id) =>
      `<tr><td>#${id}</td>${cols.map(({ s, method }) => `<td><img alt="${esc(`${method} ${id}`)}" src="${uri.get(`${s.key}:${id}:${method}`)}"></td>`).join('')}</tr>`,
  );
  return { html: `<table class="gallery" id="gallery">${head}${rows.join('')}</table>`, images: ids.length };
}

/** Headline metrics per variant: accuracy of each pooling and the CA scores of the first method. */
export function sweepRows(c: Collected): ReportSummary['sweep'] {
  const byVariant = new Map<string, ReportSummary['sweep'][number]>();
  for (const e of c.evaluations) {
    const row = byVariant.get(e.variant.alias) ?? { variant: e.variant.alias, values: e.variant.values, headline: {} };
    const pool = e.summary.pooling;
    row.headline[`${pool} top-1`] = e.summary.accuracy.top1 * 100;
    for (const [method, m] of Object.entries(e.summary.methods)) {
      for (const k of SUMMARY_METRICS) {
        const iv = m[k.key];
        if (iv && Number.isFinite(iv.mean)) row.headline[`${pool} ${method} ${k.key}`] = iv.mean * k.scale;
      }
    }
    byVariant.set(e.variant.alias, row);
  }
  return [...byVariant.values()];
}

function sweepTable(rows: ReportSummary['sweep']): string {
  if (rows.length < 2) return '<p class="muted">Single variant: nothing to compare.</p>';
  const paramKeys = [...new Set(rows.flatMap((r) => Object.keys(r.values)))];
  const varied = paramKeys.filter((k) => new Set(rows.map((r) => JSON.stringify(r.values[k]))).size > 1);
  const metricKeys = [...new Set(rows.flatMap((r) => Object.keys(r.headline)))].filter(
    (k) => new Set(rows.map((r) => r.headline[k]?.toFixed(6))).size > 1,
  );
  return table(
    [...varied, ...metricKeys],
    rows.map((r) => [...varied.map((k) => esc(JSON.stringify(r.values[k]))), ...metricKeys.map((k) => fmt(r.headline[k]))]),
  );
}

/**
 * The run-information section. It shows only what does not vary between two runs of the same
 * experiment: the report is an output like any other and must come out byte-identical when it is
 * recomputed (under another executor, or after a cache loss). Durations, throughput (train
 * images/s) and cached-or-executed status are history, so they stay in run.json and
 * `ca-pipe status`, to which the section points.
 */
function experimentSection(info: ExperimentInfo | undefined, c: Collected): string {
  if (!info) return '<p class="muted">Run information was not provided by the engine.</p>';
  const inst =
    table(
      ['stage instance', 'kind', 'variant', 'backend'],
      info.instances.map((i) => [
        esc(i.id),
        esc(i.kind),
        esc(i.variant || '–'),
        esc((i.provenance?.backend as string) ?? (i.provenance?.engine as string) ?? ''),
      ]),
    ) +
    '<p class="muted">Timings, training throughput (images/s) and which stages were cached are recorded per run in runs/&lt;experiment&gt;/&lt;run&gt;/run.json (see <code>ca-pipe status</code>), not in this report, so that the report is the same on every run that reproduces it.</p>';
  const variants =
    info.variants.length > 1
      ? table(
          ['variant', 'values'],
          info.variants.map((v) => [esc(v.alias), esc(JSON.stringify(v.values))]),
        )
      : '';
  return `<p>Experiment <b>${esc(info.name)}</b> (${esc(basename(info.file))}), ca-pipe ${esc(info.toolVersion)}.${c.ignored.length ? ` Inputs without results: ${c.ignored.map((s) => esc(s.stage)).join(', ')}.` : ''}</p>${variants}${inst}<details><summary>resolved configuration</summary><pre>${esc(JSON.stringify(info.resolved, null, 2))}</pre></details>`;
}

export async function buildReport(
  c: Collected,
  p: ReportParams,
  info: ExperimentInfo | undefined,
  pair: PairFn,
): Promise<{ html: string; markdown: string; summary: ReportSummary; galleryImages: number }> {
  const title = p.title ?? (info ? `ca-pipe report — ${info.name}` : 'ca-pipe report');
  const paired = pairedRows(c, pair, p);
  const adjusted = adjustment(paired, p.baseline ?? 'random');
  const sweep = sweepRows(c);
  const summary: ReportSummary = {
    format: 'ca-pipe.report/1',
    title,
    experiment: info ? { name: info.name, tool_version: info.toolVersion, variants: info.variants } : undefined,
    models: c.models.map((m) => ({
      stage: m.stage,
      variant: m.variant.alias,
      arch: m.card.arch,
      head: m.card.head,
      heads: m.card.heads,
      final_val_acc: m.summary?.final_val_acc,
      gap_val_acc: m.summary?.gap_val_acc,
      epochs: m.summary?.epochs,
    })),
    evaluations: c.evaluations.map((e) => ({
      stage: e.stage,
      variant: e.variant.alias,
      pooling: e.summary.pooling,
      protocol: e.summary.protocol,
      accuracy: e.summary.accuracy,
      methods: e.summary.methods as any,
    })),
    paired,
    adjustment: adjusted,
    sweep,
    ignored_inputs: c.ignored.map((s) => s.stage),
  };
  const body = [
    `<h1>${esc(title)}</h1>`,
    `<h2>Experiment</h2>${experimentSection(info, c)}`,
    `<h2>Training</h2>${trainingCharts(c)}${
      c.models.length
        ? table(
            ['model', 'arch', 'head', 'val acc', 'GAP val acc'],
            summary.models.map((m) => [
              esc(`${m.stage}${m.variant ? ` (${m.variant})` : ''}`),
              esc(m.arch),
              esc(m.head === 'gap' ? 'gap' : `${m.head} ×${m.heads}`),
              fmt((m.final_val_acc ?? NaN) * 100),
              fmt((m.gap_val_acc ?? NaN) * 100),
            ]),
          )
        : ''
    }`,
    `<h2>Faithfulness and localisation</h2><p class="muted">Mean over images with a 95% bootstrap interval. AUCs and pointing scores ×100, as in the paper.</p><div id="metrics-table">${metricsTable(c)}</div>`,
    `<h2>CA versus GAP, paired by image</h2>${pairedTable(paired)}${paired.length ? adjustmentSection(adjusted) : ''}`,
    `<h2>Insertion and deletion curves</h2>${curveCharts(c)}`,
  ];
  const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body>`;
  const tail = `<h2>Sweep</h2>${sweepTable(sweep)}</body></html>`;
  const fixed = head.length + body.join('').length + tail.length + 200;
  const g = await gallery(c, p, Math.max(0, p.max_bytes - fixed));
  const html = `${head}${body.join('')}<h2>Gallery</h2>${g.html}${tail}`;
  return { html, markdown: markdownSummary(summary), summary, galleryImages: g.images };
}

/** User text as literal Markdown: one line, Markdown punctuation escaped, HTML as text. */
export function mdText(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/[\\`*_[\]|~]/g, '\\$&')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

export function markdownSummary(s: ReportSummary): string {
  const lines = [`# ${mdText(s.title)}`, ''];
  for (const e of s.evaluations) {
    lines.push(
      `## ${e.pooling.toUpperCase()} — ${e.stage}${e.variant ? ` (${e.variant})` : ''}: top-1 ${fmt(e.accuracy.top1 * 100)} % on ${e.accuracy.n} images`,
      '',
    );
    lines.push(`| method | ${SUMMARY_METRICS.map(metricLabel).join(' | ')} |`, `|---|${SUMMARY_METRICS.map(() => '---|').join('')}`);
    for (const [method, m] of Object.entries(e.methods)) {
      const v = (k: MetricKey) => {
        const iv = m[k] as Interval | undefined;
        return iv && Number.isFinite(iv.mean) ? fmt(iv.mean * scaleOf(k)) : '–';
      };
      lines.push(`| ${method} | ${SUMMARY_METRICS.map((k) => v(k.key)).join(' | ')} |`);
    }
    lines.push('');
  }
  if (s.paired.length) {
    const b = s.adjustment.baseline;
    lines.push(
      `## CA − GAP (paired, 95 % CI), and adjusted for the ${mdText(b)} map`,
      '',
      `| variant | method | metric | CA − GAP | CI | adjusted | CI |`,
      '|---|---|---|---|---|---|---|',
    );
    for (const r of s.paired) {
      const k = scaleOf(r.metric);
      const a = r.adjusted?.diff;
      lines.push(
        `| ${r.variant || '–'} | ${r.method} | ${r.metric} | ${fmt(r.diff.mean * k)} | [${fmt(r.diff.lo * k)}, ${fmt(r.diff.hi * k)}] | ${a ? fmt(a.mean * k) : '–'} | ${a ? `[${fmt(a.lo * k)}, ${fmt(a.hi * k)}]` : ''} |`,
      );
    }
    lines.push(
      '',
      `Adjusted = (CA − GAP for the method) − (CA − GAP for the ${mdText(b)} map), per image, with a paired bootstrap interval: what is left once the change of model alone is taken out.`,
      '',
      ...s.adjustment.text.flatMap((t) => [mdText(t), '']),
    );
  }
  return lines.join('\n') + '\n';
}
