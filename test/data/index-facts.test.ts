// indexFacts: what an index will hold (classes, split sizes) before it is built, for the plan-time
// checks of the stages that consume it; it must agree with what buildIndex then builds.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildIndex, indexFacts } from '../../ml/data/build-index.js';
import type { IndexParams } from '../../ml/data/index-params.js';
import { withTmp } from './helpers.js';

async function agree(p: IndexParams, dir: string): Promise<void> {
  const facts = await indexFacts(p, dir);
  const built = await buildIndex(p, { baseDir: dir, outDir: join(dir, 'out') });
  assert.deepEqual(facts, {
    classes: built.classes.length,
    classNames: built.classes,
    train: built.splits.train.length,
    val: built.splits.val.length,
  });
}

test('indexFacts agrees with the built index for synthetic, imagefolder and list sources', async () => {
  await withTmp(async (dir) => {
    for (const f of ['a/1.png', 'a/2.png', 'b/1.png', 'b/2.png', 'b/3.png', 'c/1.png']) {
      await mkdir(join(dir, 'ds', f, '..'), { recursive: true });
      await writeFile(join(dir, 'ds', f), 'x');
    }
    await writeFile(join(dir, 'l.csv'), 'a/1.png,0\nb/1.png,1\nb/2.png,1\nc/1.png,3\n');
    await mkdir(join(dir, 'out'));
    await agree({ source: 'synthetic', synthetic: { classes: 3, per_class: 5, size: 16, seed: 0 }, split: { fraction: 0.3 } }, dir);
    await agree({ source: 'imagefolder', root: 'ds', split: { fraction: 0.5 } }, dir);
    await agree({ source: 'imagefolder', root: 'ds', limit: 3 }, dir);
    await agree({ source: 'list', file: 'l.csv', root: 'ds', split: { fraction: 0.25 } }, dir);
  });
});

test('indexFacts of a list under verify: none is unknown (the list is trusted until it is built)', async () => {
  await withTmp(async (dir) => {
    await writeFile(join(dir, 'l.csv'), 'a/1.png,0\n');
    assert.equal(await indexFacts({ source: 'list', file: 'l.csv', verify: 'none' }, dir), undefined);
  });
});
