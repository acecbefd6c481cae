import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { encodePng } from '../../ml/io/image.js';
import { loaderItems, readIndex } from '../../ml/data/index-file.js';
import { indexStage, type IndexParams } from '../../stages/index/index.js';
import { fakeCtx, rejectsWith, SHARED_DATA, withTmp } from './helpers.js';

let tinyPng: Buffer | null = null;
async function tiny(): Promise<Buffer> {
  tinyPng ??= await encodePng(new Uint8Array(8 * 8 * 3).fill(90), 8, 8, 3);
  return tinyPng;
}

async function put(root: string, rel: string, data?: Buffer): Promise<void> {
  await mkdir(dirname(join(root, rel)), { recursive: true });
  await writeFile(join(root, rel), data ?? (await tiny()));
}

async function runIndex(
  params: IndexParams,
  baseDir: string,
  tag = 'a',
): Promise<{ out: string; ctx: ReturnType<typeof fakeCtx<IndexParams>> }> {
  const out = join(baseDir, `out-${tag}`);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const scratchDir = join(baseDir, 'scratch', tag);
  await mkdir(scratchDir, { recursive: true });
  const ctx = fakeCtx(params, { outDir: out, scratchDir, baseDir });
  await indexStage.run(ctx);
  return { out, ctx };
}

test('MIT_train.csv against a folder with those names: 5,360 entries, 67 classes, spaces intact', async () => {
  await withTmp(async (tmp) => {
    const text = await readFile(join(SHARED_DATA, 'MIT_train.csv'), 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const paths = lines.map((l) => l.slice(0, l.lastIndexOf(',')));
    const data = await tiny();
    const dirs = [...new Set(paths.map((p) => p.slice(0, p.indexOf('/'))))];
    await Promise.all(dirs.map((d) => mkdir(join(tmp, 'mit', d), { recursive: true })));
    for (let i = 0; i < paths.length; i += 200) await Promise.all(paths.slice(i, i + 200).map((p) => writeFile(join(tmp, 'mit', p), data)));

    const { out } = await runIndex({ source: 'list', file: join(SHARED_DATA, 'MIT_train.csv'), root: 'mit' }, tmp);
    const idx = await readIndex(out);
    assert.equal(idx.records.length, 5360);
    assert.equal(idx.classes.length, 67);
    // Labels are the alphabetical index of the class folder: check against our own sort.
    assert.deepEqual(idx.classes, [...dirs].sort());
    for (const r of idx.records) {
      assert.equal(r.class, r.path.slice(0, r.path.indexOf('/')));
      assert.equal(r.size, data.length);
    }
    const spaced = idx.records
      .filter((r) => r.path.includes(' '))
      .map((r) => r.path)
      .sort();
    assert.deepEqual(spaced, paths.filter((p) => p.includes(' ')).sort());
    assert.equal(spaced.length, 4); // the other two of the six are in MIT_val.csv
    assert.ok(spaced.includes('mall/shopping mall.jpg'));
    assert.equal((await stat(idx.imagePath(idx.records.find((r) => r.path === 'mall/shopping mall.jpg')!))).size, data.length);
    assert.equal(idx.splits.val.length, Math.floor(5360 * 0.2));
    assert.equal(idx.splits.train.length + idx.splits.val.length, 5360);
    assert.equal(new Set([...idx.splits.train, ...idx.splits.val]).size, 5360);
  });
});

test('ImageNet val list with verify: none parses 50,000 entries without touching image files', async () => {
  await withTmp(async (tmp) => {
    const params: IndexParams = {
      source: 'list',
      file: join(SHARED_DATA, 'revisited_imagenet_2012_val.csv'),
      root: tmp,
      verify: 'none',
      split: { fraction: 0 },
    };
    const { out } = await runIndex(params, tmp);
    const idx = await readIndex(out);
    assert.equal(idx.records.length, 50000);
    assert.equal(idx.classes.length, 1000);
    assert.equal(idx.classes[65], 'class_65'); // flat paths: no class folder to name the class after
    assert.equal(idx.records[1]!.label, 970);
    assert.equal(idx.records[0]!.size, undefined);
    assert.equal(idx.splits.val.length, 0);
    const ext = await indexStage.externalDigest!(params, tmp);
    assert.deepEqual(Object.keys(ext), ['list_file']);
  });
});

test('imagefolder: sorted class folders, nested files, case-insensitive extensions, stray files ignored', async () => {
  await withTmp(async (tmp) => {
    const root = join(tmp, 'ds');
    await put(root, 'zebra/a.PNG');
    await put(root, 'apple/x/deep.jpg');
    await put(root, 'apple/b.png');
    await put(root, 'apple/notes.txt', Buffer.from('not an image'));
    await put(root, 'Mango/c.WebP');
    await put(root, 'stray.png');
    const { out, ctx } = await runIndex({ source: 'imagefolder', root: 'ds', split: { fraction: 0.5, seed: 3 } }, tmp);
    const idx = await readIndex(out);
    assert.deepEqual(idx.classes, ['Mango', 'apple', 'zebra']); // code-point order, like Python's sorted()
    assert.deepEqual(
      idx.records.map((r) => [r.path, r.label]),
      [
        ['Mango/c.WebP', 0],
        ['apple/b.png', 1],
        ['apple/x/deep.jpg', 1],
        ['zebra/a.PNG', 2],
      ],
    );
    assert.equal(idx.meta.root, root);
    assert.ok(idx.records.every((r) => typeof r.mtime === 'number' && r.sha256 === undefined));
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(summary.per_class, { Mango: 1, apple: 2, zebra: 1 });
    assert.deepEqual(summary.ignored, ['stray.png']);
    assert.match(ctx.logs.join('\n'), /4 items, 3 classes/);
    assert.equal(idx.splits.val.length, 2);
  });
});

test('verify: content records each file sha256; limit keeps the first N in list order', async () => {
  await withTmp(async (tmp) => {
    await put(tmp, 'd/one.png', Buffer.from('1111'));
    await put(tmp, 'd/two.png', Buffer.from('22'));
    await writeFile(join(tmp, 'l.csv'), 'd/two.png,1\nd/one.png,0\n');
    const { out } = await runIndex({ source: 'list', file: 'l.csv', verify: 'content', limit: 1 }, tmp);
    const idx = await readIndex(out);
    assert.equal(idx.records.length, 1);
    const { createHash } = await import('node:crypto');
    const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
    assert.equal(idx.records[0]!.path, 'd/two.png');
    assert.equal(idx.records[0]!.sha256, sha('22'));

    // A rerun after one file changed reads only that file; unchanged ones keep their hash.
    // (The limited run above already hashed d/two.png.)
    const first = await runIndex({ source: 'list', file: 'l.csv', verify: 'content' }, tmp, 'c1');
    assert.match(first.ctx.logs.join('\n'), /hashed 1 file\(s\), reused 1/);
    await writeFile(join(tmp, 'd/one.png'), Buffer.from('111'));
    const second = await runIndex({ source: 'list', file: 'l.csv', verify: 'content' }, tmp, 'c2');
    assert.match(second.ctx.logs.join('\n'), /hashed 1 file\(s\), reused 1/);
    const again = await readIndex(second.out);
    assert.deepEqual(
      again.records.map((r) => [r.path, r.sha256]),
      [
        ['d/two.png', sha('22')],
        ['d/one.png', sha('111')],
      ],
    );
  });
});

test('a split indices file overrides the random split and is validated', async () => {
  await withTmp(async (tmp) => {
    await put(tmp, 'ds/c/a.png');
    await put(tmp, 'ds/c/b.png');
    await put(tmp, 'ds/c/c.png');
    await writeFile(join(tmp, 'split.json'), '{"train":[2,0],"val":[1]}');
    const { out } = await runIndex({ source: 'imagefolder', root: 'ds', split: { indices: 'split.json' } }, tmp);
    assert.deepEqual(JSON.parse(await readFile(join(out, 'splits.json'), 'utf8')), { train: [2, 0], val: [1] });
    await writeFile(join(tmp, 'split.json'), '{"train":[0,3]}');
    await rejectsWith(
      runIndex({ source: 'imagefolder', root: 'ds', split: { indices: 'split.json' } }, tmp),
      /split\.json: train\[1\] = 3 is not an index in \[0, 3\)/,
    );
    await writeFile(join(tmp, 'split.json'), '{"train":[0,1],"val":[1]}');
    await rejectsWith(runIndex({ source: 'imagefolder', root: 'ds', split: { indices: 'split.json' } }, tmp), /index 1 appears twice/);
  });
});

test('bad inputs: each error names the path (and line)', async () => {
  await withTmp(async (tmp) => {
    await rejectsWith(runIndex({ source: 'imagefolder', root: 'nope' }, tmp), /imagefolder root .*nope does not exist/);
    await rejectsWith(runIndex({ source: 'list', file: 'missing.csv' }, tmp), /list file .*missing\.csv does not exist/);
    await writeFile(join(tmp, 'ok.csv'), 'a/x.png,0\n');
    await rejectsWith(runIndex({ source: 'list', file: 'ok.csv', root: 'gone' }, tmp), /list root .*gone does not exist/);

    await writeFile(join(tmp, 'afile'), 'x');
    await rejectsWith(runIndex({ source: 'imagefolder', root: 'afile' }, tmp), /imagefolder root .*afile is not a directory/);
    await mkdir(join(tmp, 'flatdir'));
    await put(tmp, 'flatdir/x.png');
    await rejectsWith(runIndex({ source: 'imagefolder', root: 'flatdir' }, tmp), /imagefolder root .*flatdir has no class sub-folders/);

    // empty class folder
    await put(tmp, 'f/full/a.png');
    await mkdir(join(tmp, 'f', 'empty'), { recursive: true });
    await put(tmp, 'f/empty/readme.txt', Buffer.from('x'));
    await rejectsWith(runIndex({ source: 'imagefolder', root: 'f' }, tmp), /imagefolder .*f: class folder "empty" contains no images/);

    // unreadable / missing files in a list
    await put(tmp, 'a/x.png');
    await writeFile(join(tmp, 'miss.csv'), 'a/x.png,0\na/y.png,1\n');
    await rejectsWith(runIndex({ source: 'list', file: 'miss.csv' }, tmp), /miss\.csv:2: cannot read .*a\/y\.png \(no such file\)/);
    await mkdir(join(tmp, 'a', 'dir.png'));
    await writeFile(join(tmp, 'dir.csv'), 'a/x.png,0\na/dir.png,1\n');
    await rejectsWith(runIndex({ source: 'list', file: 'dir.csv' }, tmp), /dir\.csv:2: .*dir\.png is not a regular file/);

    // labels out of range
    await put(tmp, 'a/z.png');
    await writeFile(join(tmp, 'range.csv'), 'a/x.png,0\na/z.png,5\n');
    await rejectsWith(
      runIndex({ source: 'list', file: 'range.csv', num_classes: 5 }, tmp),
      /range\.csv:2: label 5 out of range \[0, 5\) \(num_classes\)/,
    );
    await writeFile(join(tmp, 'two.txt'), 'cat\ndog\n');
    await rejectsWith(
      runIndex({ source: 'list', file: 'range.csv', classes: 'two.txt' }, tmp),
      /range\.csv:2: label 5 out of range \[0, 2\) \(classes file\)/,
    );
    await writeFile(join(tmp, 'neg.txt'), 'a/x.png 0\na/z.png -1\n');
    await rejectsWith(runIndex({ source: 'list', file: 'neg.txt' }, tmp), /neg\.txt:2: label -1 out of range/);

    // duplicate entries and malformed lines, through the stage
    await writeFile(join(tmp, 'dup.csv'), 'a/x.png,0\na/z.png,1\na/x.png,0\n');
    await rejectsWith(
      runIndex({ source: 'list', file: 'dup.csv' }, tmp),
      /dup\.csv:3: duplicate entry "a\/x\.png" \(first seen on line 1\)/,
    );
    await writeFile(join(tmp, 'bad.csv'), 'a/x.png,0\na/z.png;1\n');
    await rejectsWith(runIndex({ source: 'list', file: 'bad.csv' }, tmp), /bad\.csv:2: malformed line "a\/z\.png;1"/);

    // path-only list with a file outside any class folder
    await writeFile(join(tmp, 'flat.txt'), 'a/x.png\nx.png\n');
    await rejectsWith(runIndex({ source: 'list', file: 'flat.txt' }, tmp), /flat\.txt:2: no label and no class folder in "x\.png"/);
  });
});

test('path-only list: labels are the alphabetical index of the class folder', async () => {
  await withTmp(async (tmp) => {
    await put(tmp, 'zoo/a.png');
    await put(tmp, 'bar/b b.png');
    await writeFile(join(tmp, 'l.txt'), 'zoo/a.png\nbar/b b.png');
    const { out } = await runIndex({ source: 'list', file: 'l.txt' }, tmp);
    const idx = await readIndex(out);
    assert.deepEqual(idx.classes, ['bar', 'zoo']);
    assert.deepEqual(
      idx.records.map((r) => [r.path, r.label]),
      [
        ['zoo/a.png', 1],
        ['bar/b b.png', 0],
      ],
    );
  });
});

test('listing digest: unchanged folder → same digest without reading bytes; changes → new digest, named', async () => {
  await withTmp(async (tmp) => {
    const root = join(tmp, 'ds');
    await put(root, 'cat/1.png', Buffer.from('aaaa'));
    await put(root, 'cat/2.png', Buffer.from('bbbb'));
    await put(root, 'dog/3.png', Buffer.from('cccc'));
    // Whole-second mtimes, so the test can restore them exactly (utimes rounds sub-ms values).
    const T = 1_700_000_000;
    for (const f of ['cat/1.png', 'cat/2.png', 'dog/3.png']) await utimes(join(root, f), T, T);
    const params: IndexParams = { source: 'imagefolder', root: 'ds' };
    const d0 = await indexStage.externalDigest!(params, tmp);
    assert.deepEqual(await indexStage.externalDigest!(params, tmp), d0);
    const first = await runIndex(params, tmp, 'k0');

    // Same size, same mtime, different bytes: the digest cannot change unless bytes were read.
    const f2 = join(root, 'cat/2.png');
    await writeFile(f2, Buffer.from('BBBB'));
    await utimes(f2, T, T);
    assert.deepEqual(await indexStage.externalDigest!(params, tmp), d0);
    // ... and the index output is byte-identical too (no timestamps or history in it).
    const again = await runIndex(params, tmp, 'k0b');
    for (const f of await readdir(first.out)) {
      assert.deepEqual(await readFile(join(again.out, f)), await readFile(join(first.out, f)), f);
    }

    await put(root, 'dog/4.png', Buffer.from('dd'));
    await rm(join(root, 'cat/1.png'));
    await writeFile(join(root, 'dog/3.png'), Buffer.from('ccccc'));
    const d1 = await indexStage.externalDigest!(params, tmp);
    assert.notEqual(d1.listing, d0.listing);
    const second = await runIndex(params, tmp, 'k1');
    assert.deepEqual(second.ctx.provenance.index_changes, {
      previous_listing: d0.listing,
      added: ['dog/4.png'],
      removed: ['cat/1.png'],
      modified: ['dog/3.png'],
    });
    assert.match(second.ctx.logs.join('\n'), /1 added \(dog\/4\.png\); 1 removed \(cat\/1\.png\); 1 modified \(dog\/3\.png\)/);

    // touch alone (mtime) also counts as a modification
    const t = new Date(Date.now() + 5000);
    await utimes(join(root, 'dog/4.png'), t, t);
    assert.notEqual((await indexStage.externalDigest!(params, tmp)).listing, d1.listing);
  });
});

test('list digests cover the list file, the listed files and the classes/split files', async () => {
  await withTmp(async (tmp) => {
    await put(tmp, 'a/x.png', Buffer.from('xx'));
    await writeFile(join(tmp, 'l.csv'), 'a/x.png,0\n');
    await writeFile(join(tmp, 'c.txt'), 'only\n');
    await writeFile(join(tmp, 's.json'), '{"train":[0]}');
    const params: IndexParams = { source: 'list', file: 'l.csv', classes: 'c.txt', split: { indices: 's.json' } };
    const d0 = await indexStage.externalDigest!(params, tmp);
    assert.deepEqual(Object.keys(d0).sort(), ['classes_file', 'list_file', 'listing', 'split_indices']);
    await writeFile(join(tmp, 'a/x.png'), Buffer.from('xxx'));
    const d1 = await indexStage.externalDigest!(params, tmp);
    assert.notEqual(d1.listing, d0.listing);
    assert.equal(d1.list_file, d0.list_file);
    assert.deepEqual(indexStage.requiredPaths!(params), ['l.csv', 'c.txt', 's.json']);
  });
});

test('synthetic source: images and masks live inside the output and are referenced relatively', async () => {
  await withTmp(async (tmp) => {
    const params: IndexParams = {
      source: 'synthetic',
      synthetic: { classes: 3, per_class: 4, size: 32, seed: 7 },
      split: { fraction: 0.25 },
    };
    const { out } = await runIndex(params, tmp);
    const idx = await readIndex(out);
    assert.equal(idx.meta.root, '.');
    assert.equal(idx.meta.masks, true);
    assert.deepEqual(idx.classes, ['circle', 'square', 'triangle']);
    assert.equal(idx.records.length, 12);
    for (const r of idx.records) {
      assert.ok(!r.path.startsWith('/') && !r.mask!.startsWith('/'));
      assert.equal(r.mtime, undefined);
      assert.equal((await stat(idx.imagePath(r))).size, r.size);
      await stat(idx.maskPath(r)!);
    }
    assert.deepEqual(await indexStage.externalDigest!(params, tmp), {});
    const val = loaderItems(idx, 'val');
    assert.equal(val.length, 3);
    assert.deepEqual(
      val.map((v) => v.id),
      idx.splits.val,
    );
    assert.ok(val.every((v) => v.path === join(out, idx.records[v.id]!.path) && v.label === idx.records[v.id]!.label));
    // A second run elsewhere gives byte-identical index files.
    const other = await runIndex(params, tmp, 'b');
    for (const f of ['index.jsonl', 'classes.json', 'splits.json', 'dataset.json', 'summary.json']) {
      assert.deepEqual(await readFile(join(other.out, f)), await readFile(join(out, f)), f);
    }
  });
});

test('params schema: the JSON file equals the TS object; bad synthetic params are rejected', async () => {
  const { repoRoot } = await import('./helpers.js');
  const onDisk = JSON.parse(await readFile(join(repoRoot(), 'schemas', 'stages', 'index.schema.json'), 'utf8'));
  assert.deepEqual(onDisk, JSON.parse(JSON.stringify(indexStage.paramsSchema)));
  await withTmp(async (tmp) => {
    await rejectsWith(
      runIndex({ source: 'synthetic', synthetic: { classes: 9 } }, tmp),
      /synthetic\.classes must be an integer in \[1, 8\], got 9/,
    );
    await rejectsWith(
      runIndex({ source: 'synthetic', synthetic: { clutter: 'none' as never } }, tmp),
      /synthetic\.clutter must be one of full, low, got "none"/,
    );
    await rejectsWith(runIndex({ source: 'list' } as IndexParams, tmp), /source "list" needs "file"/);
  });
});

test('sort order is Python sorted() (code points), also across surrogate pairs', async () => {
  const { compareCodePoints } = await import('../../ml/data/image-folder.js');
  const byCodePoints = (a: string, b: string): number => {
    const A = [...a].map((c) => c.codePointAt(0)!);
    const B = [...b].map((c) => c.codePointAt(0)!);
    for (let i = 0; i < Math.min(A.length, B.length); i++) if (A[i] !== B[i]) return A[i]! - B[i]!;
    return A.length - B.length;
  };
  const pool = ['a', 'b', 'Z', 'é', '\uffff', '\ue000', '😀', '😁', 'ab', 'a😀', 'a\uffff', ''];
  for (const x of pool)
    for (const y of pool) assert.equal(Math.sign(compareCodePoints(x, y)), Math.sign(byCodePoints(x, y)), `${x} vs ${y}`);
});

test('an empty list is an error naming the file', async () => {
  await withTmp(async (tmp) => {
    await writeFile(join(tmp, 'empty.csv'), '\n\n');
    await rejectsWith(runIndex({ source: 'list', file: 'empty.csv' }, tmp), /list file .*empty\.csv has no entries/);
  });
});
