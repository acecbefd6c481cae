// Runs every bad-input case of every area for real and checks both the answer (exit code and text)
// and that docs/bad-inputs.md shows exactly that answer.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { DOC_FILE, documentedAnswer, documentedIds, expectedBlock, loadCases, REGENERATE, runCases } from './catalogue.js';

const cases = await loadCases();
const answers = await runCases(cases);
const doc = await readFile(DOC_FILE, 'utf8').catch(() => '');

for (const [i, c] of cases.entries()) {
  const a = answers[i]!;
  test(`${c.area}: ${c.id}: ${c.mistake}`, () => {
    assert.equal(a.exitCode, c.exitCode, `exit code ${a.exitCode}, expected ${c.exitCode}; the answer was:\n${a.raw}`);
    if (typeof c.expect === 'string')
      assert.ok(a.raw.includes(c.expect), `expected the answer to contain ${JSON.stringify(c.expect)}; it was:\n${a.raw}`);
    else assert.match(a.raw, c.expect, `the answer was:\n${a.raw}`);
    assert.doesNotMatch(a.raw, /^\s+at .*\(.*:\d+:\d+\)$/m, 'the answer shows a stack trace');
  });
  test(`docs/bad-inputs.md shows the real answer of ${c.id}`, () => {
    const shown = documentedAnswer(doc, c.id);
    assert.ok(shown !== undefined, `${DOC_FILE} has no entry for case ${c.id}: run \`${REGENERATE}\``);
    assert.equal(shown, expectedBlock(a), `${DOC_FILE} is out of date for case ${c.id}: run \`${REGENERATE}\` (and read the diff)`);
  });
}

test('docs/bad-inputs.md documents no case that no longer exists', () => {
  const known = new Set(cases.map((c) => c.id));
  const stale = documentedIds(doc).filter((id) => !known.has(id));
  assert.deepEqual(stale, [], `${DOC_FILE} still shows removed case(s) ${stale.join(', ')}: run \`${REGENERATE}\``);
});
