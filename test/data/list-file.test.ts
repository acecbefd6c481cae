import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseClassesFile, parseList } from '../../ml/data/list-file.js';
import { SHARED_DATA } from './helpers.js';

test('MIT lists: 5,360 + 1,340 entries, labels 0–66, the six names with spaces kept whole', () => {
  const text = readFileSync(join(SHARED_DATA, 'MIT_train.csv'), 'utf8');
  const parsed = parseList(text, { source: 'MIT_train.csv' });
  assert.equal(parsed.format, 'csv');
  assert.equal(parsed.hasLabels, true);
  assert.equal(parsed.headerSkipped, false);
  assert.equal(parsed.entries.length, 5360);
  const labels = new Set(parsed.entries.map((e) => e.label));
  assert.equal(labels.size, 67);
  assert.equal(Math.min(...(labels as Set<number>)), 0);
  assert.equal(Math.max(...(labels as Set<number>)), 66);
  // Independent check: the raw lines with a space, each split on its last comma by hand.
  const valText = readFileSync(join(SHARED_DATA, 'MIT_val.csv'), 'utf8');
  const val = parseList(valText, { source: 'MIT_val.csv' });
  assert.equal(val.entries.length, 1340);
  const both = [...parsed.entries, ...val.entries];
  const spaced = (text + '\n' + valText).split('\n').filter((l) => l.includes(' '));
  assert.equal(spaced.length, 6);
  for (const l of spaced) {
    const i = l.lastIndexOf(',');
    const e = both.find((x) => x.path === l.slice(0, i));
    assert.ok(e, `entry for ${l}`);
    assert.equal(e.label, Number(l.slice(i + 1)));
  }
  assert.ok(parsed.entries.some((e) => e.path === 'mall/shopping mall.jpg'));
});

test('revisited_imagenet_2012_val.csv: 50,000 flat entries, 50 per class', () => {
  const parsed = parseList(readFileSync(join(SHARED_DATA, 'revisited_imagenet_2012_val.csv'), 'utf8'));
  assert.equal(parsed.entries.length, 50000);
  assert.deepEqual(parsed.entries[0], { path: 'ILSVRC2012_val_00000001.JPEG', label: 65, line: 1 });
  assert.deepEqual(parsed.entries[1], { path: 'ILSVRC2012_val_00000002.JPEG', label: 970, line: 2 });
  const counts = new Map<number, number>();
  for (const e of parsed.entries) counts.set(e.label!, (counts.get(e.label!) ?? 0) + 1);
  assert.equal(counts.size, 1000);
  assert.ok([...counts.values()].every((c) => c === 50));
});

test('text lists split on the last whitespace; CRLF, BOM and blank lines are tolerated', () => {
  const parsed = parseList('\ufeffa/b c.jpg 3\r\nd/e.jpg\t1\r\n\r\n');
  assert.equal(parsed.format, 'txt');
  assert.deepEqual(parsed.entries, [
    { path: 'a/b c.jpg', label: 3, line: 1 },
    { path: 'd/e.jpg', label: 1, line: 2 },
  ]);
});

test('a CSV file name may itself contain a comma: the label is after the last one', () => {
  const parsed = parseList('x/a,b.jpg,2\nx/c.jpg,0\n');
  assert.deepEqual(
    parsed.entries.map((e) => [e.path, e.label]),
    [
      ['x/a,b.jpg', 2],
      ['x/c.jpg', 0],
    ],
  );
});

test('headers are auto-detected, forced, or disabled', () => {
  assert.equal(parseList('path,label\na.jpg,0\n').headerSkipped, true);
  assert.equal(parseList('filename label\na.jpg 0\n').entries.length, 1);
  assert.deepEqual(parseList('imgs,cls\na.jpg,0\n', { header: true }).entries, [{ path: 'a.jpg', label: 0, line: 2 }]);
  assert.throws(() => parseList('path,label\na.jpg,0\n', { header: false, source: 'l.csv' }), /l\.csv:1: malformed line "path,label"/);
});

test('path-only lists (MIT_*.txt style, no trailing newline)', () => {
  const parsed = parseList('mall/shopping mall.jpg\nbar/b1.jpg');
  assert.equal(parsed.hasLabels, false);
  assert.deepEqual(
    parsed.entries.map((e) => e.path),
    ['mall/shopping mall.jpg', 'bar/b1.jpg'],
  );
});

test('malformed lines name the file and line', () => {
  assert.throws(() => parseList('a.jpg,1\nb.jpg,x\n', { source: 'list.csv' }), /list\.csv:2: malformed line "b\.jpg,x"/);
  assert.throws(() => parseList('a.jpg,1\nb.jpg\n', { source: 'list.csv' }), /list\.csv:2: malformed line/);
  assert.throws(() => parseList('a.jpg 1\nb.jpg 2.5\n', { source: 'l.txt' }), /l\.txt:2: malformed line/);
  assert.throws(() => parseList('a.jpg,1\n,2\n', { source: 'l.csv' }), /l\.csv:2: empty path/);
});

test('duplicate entries name both lines', () => {
  assert.throws(
    () => parseList('a.jpg,1\nb.jpg,0\n\na.jpg,1\n', { source: 'd.csv' }),
    /d\.csv:4: duplicate entry "a\.jpg" \(first seen on line 1\)/,
  );
});

test('classes files: JSON array or lines; empty and duplicate names rejected', () => {
  assert.deepEqual(parseClassesFile('["b","a"]', 'c.json'), ['b', 'a']);
  assert.deepEqual(parseClassesFile('cat\r\ndog\n', 'c.txt'), ['cat', 'dog']);
  assert.throws(() => parseClassesFile('cat\n\ndog', 'c.txt'), /c\.txt:2: empty class name/);
  assert.throws(() => parseClassesFile('cat\ndog\ncat', 'c.txt'), /c\.txt: duplicate class name "cat" \(entries 1 and 3\)/);
  assert.throws(() => parseClassesFile('[1,2]', 'c.json'), /c\.json: expected a JSON array/);
});
