// The README's account of the quickstart must match experiments/quickstart.yaml (issue 12, item 18:
// it said "seven stages" for eight).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { EXPERIMENTS, REPO } from './helpers.js';

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];

test('README: the number of quickstart stages it states is the number quickstart.yaml has', async () => {
  const readme = await readFile(join(REPO, 'README.md'), 'utf8');
  const doc = parse(await readFile(join(EXPERIMENTS, 'quickstart.yaml'), 'utf8')) as { stages: Record<string, unknown> };
  const stages = Object.keys(doc.stages);
  const claim = /quickstart\.yaml`[^\n]*?runs (\w+) stages/.exec(readme);
  assert.ok(claim, 'README no longer says how many stages the quickstart runs');
  assert.equal(
    claim[1],
    NUMBER_WORDS[stages.length],
    `README says "${claim[1]}" stages; quickstart.yaml has ${stages.length} (${stages.join(', ')})`,
  );
});
