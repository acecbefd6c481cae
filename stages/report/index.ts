// The `report` kind: one static HTML file (no network: inline SVG and data URIs), summary.md and
// summary.json, over every variant's train / saliency / evaluate outputs.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext, StageKind } from '../../engine/contract.js';
import type { ReportParams } from './build.js';
import { reportParamsSchema } from './schema.js';

async function run(ctx: StageContext<ReportParams>): Promise<void> {
  const { collect, sources } = await import('./collect.js');
  const { buildReport } = await import('./build.js');
  const { pairedDifference } = await import('../../ml/metrics/stats.js');
  ctx.progress.total(3, 'step');
  const collected = await collect(sources(ctx));
  ctx.progress.tick();
  const r = await buildReport(collected, ctx.params, ctx.experiment, (a, b, o) => pairedDifference(a, b, o));
  ctx.progress.tick();
  await writeFile(join(ctx.outDir, 'report.html'), r.html);
  await writeFile(join(ctx.outDir, 'summary.md'), r.markdown);
  await writeFile(join(ctx.outDir, 'summary.json'), JSON.stringify(r.summary, null, 2) + '\n');
  ctx.progress.tick();
  // outDir is a staging directory that the engine renames into the store after run() returns, so
  // its path must not be shown as the report's location.
  ctx.log.info(
    `report: report.html ${(r.html.length / 1e6).toFixed(2)} MB, ${collected.evaluations.length} evaluation(s), ${collected.models.length} model(s), gallery of ${r.galleryImages} image(s)`,
  );
}

export const reportStage: StageKind<ReportParams> = {
  kind: 'report',
  // 2: the run-information table no longer shows seconds and cache status (not reproducible).
  // 3: the experiment file is named without its directory (the same bytes in every checkout).
  version: 3,
  paramsSchema: reportParamsSchema,
  scope: 'experiment',
  run,
};
