// The `index` stage kind: turns a dataset folder, an annotation list or the synthetic generator
// into an index directory (see ml/data/index-file.ts). ml/ is imported lazily so that loading
// the stage table stays cheap for the CLI.
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import type { StageContext, StageKind } from '../../engine/contract.js';
import type { IndexParams } from '../../ml/data/index-params.js';
import { indexParamsSchema } from './schema.js';

export type { IndexParams };

/**
 * Where the previous listing of the same dataset is kept. A changed listing changes the key, and
 * the store deletes a key's scratch dir once its outputs are committed, so the history cannot
 * live in ctx.scratchDir: it goes to `<store>/index-listings/` (the store's scratch dirs are
 * `<store>/scratch/<key>`), one file per dataset identity (source + resolved root/list file).
 */
export function listingHistoryFile(scratchDir: string, p: IndexParams, baseDir: string): string {
  const identity = [p.source, p.root ? resolve(baseDir, p.root) : '', p.file ? resolve(baseDir, p.file) : ''].join('\0');
  const id = createHash('sha256').update(identity).digest('hex').slice(0, 20);
  return join(dirname(dirname(scratchDir)), 'index-listings', `${id}.json.gz`);
}

async function run(ctx: StageContext<IndexParams>): Promise<void> {
  const { buildIndex } = await import('../../ml/data/build-index.js');
  const { writeIndexFiles } = await import('../../ml/data/index-file.js');
  const listing = await import('../../ml/data/listing.js');
  const p = ctx.params;
  const history = listingHistoryFile(ctx.scratchDir, p, ctx.baseDir);
  const prev = p.source === 'synthetic' ? null : await listing.loadListing(history);
  const built = await buildIndex(p, {
    baseDir: ctx.baseDir,
    outDir: ctx.outDir,
    progress: ctx.progress,
    signal: ctx.signal,
    ...(prev && { knownFiles: prev.files }),
  });
  const { summary } = await writeIndexFiles(ctx.outDir, built, p.preprocessing);
  ctx.log.info(
    `index: ${summary.count} items, ${summary.num_classes} classes (train ${summary.splits.train}, val ${summary.splits.val})` +
      (built.ignored.length ? `; ignored ${built.ignored.length} file(s) outside class folders` : ''),
  );

  if (built.hashed)
    ctx.log.info(`index: hashed ${built.hashed.read} file(s), reused ${built.hashed.reused} unchanged hash(es) from the previous listing`);
  if (built.listing && built.listingDigest) {
    // "What changed" is provenance, not output: the outputs must be a function of the inputs alone.
    if (prev && prev.digest !== built.listingDigest) {
      const changes = listing.diffListings(prev.files, built.listing);
      ctx.log.info(`index: dataset changed since the previous listing: ${listing.describeChanges(changes)}`);
      ctx.provenance.index_changes = { previous_listing: prev.digest, ...changes };
    }
    try {
      await listing.saveListing(history, built.listingDigest, built.listing);
    } catch (e) {
      ctx.log.warn(`index: could not keep the listing for the next change report: ${(e as Error).message}`);
    }
  }
}

export const indexStage: StageKind<IndexParams> = {
  kind: 'index',
  version: 1,
  paramsSchema: indexParamsSchema,
  inputs: { required: [], optional: [] },
  async externalDigest(params, baseDir) {
    const { computeExternalDigest } = await import('../../ml/data/build-index.js');
    return computeExternalDigest(params, baseDir);
  },
  async planFacts(params, baseDir) {
    const { indexFacts } = await import('../../ml/data/build-index.js');
    // Unknown facts ({}) leave the consumers' checks to run time.
    return { ...((await indexFacts(params, baseDir)) ?? {}) };
  },
  requiredPaths(params) {
    const out: string[] = [];
    if (params.source === 'imagefolder' && params.root) out.push(params.root);
    if (params.source === 'list') {
      if (params.file) out.push(params.file);
      if (params.root) out.push(params.root);
      if (params.classes) out.push(params.classes);
    }
    if (params.split?.indices) out.push(params.split.indices);
    return out;
  },
  run,
};

export default indexStage;
