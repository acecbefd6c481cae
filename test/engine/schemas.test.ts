// schemas/stages/<kind>.schema.json must be the schema each registered kind validates with
// (regenerate with `ca-pipe schemas --write`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STAGE_KINDS } from '../../stages/index.js';
import { stageSchemasDir, syncStageSchemas } from '../../cli/write-schemas.js';
import { emitKind, tempDir } from './helpers.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}

for (const kind of STAGE_KINDS) {
  test(`schemas/stages/${kind.kind}.schema.json equals the ${kind.kind} kind's paramsSchema`, async () => {
    const file = join(repoRoot(), 'schemas', 'stages', `${kind.kind}.schema.json`);
    assert.ok(existsSync(file), `${file} is missing: run \`ca-pipe schemas --write\``);
    const onDisk = JSON.parse(await readFile(file, 'utf8'));
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(kind.paramsSchema)), `${file} is stale: run \`ca-pipe schemas --write\``);
  });
}

test('the schema directory the CLI writes to is the one checked above', () => {
  assert.equal(stageSchemasDir(), join(repoRoot(), 'schemas', 'stages'));
});

test('syncStageSchemas reports missing and stale files, and --write makes them equal', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'emit.schema.json');
  const before = await syncStageSchemas([emitKind], dir, false);
  assert.deepEqual(before, { stale: [file], upToDate: [] });
  assert.ok(!existsSync(file), 'a check writes nothing');
  await syncStageSchemas([emitKind], dir, true);
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), emitKind.paramsSchema);
  assert.deepEqual(await syncStageSchemas([emitKind], dir, false), { stale: [], upToDate: [file] });
  await writeFile(file, JSON.stringify({ type: 'object' }));
  assert.deepEqual((await syncStageSchemas([emitKind], dir, false)).stale, [file]);
});
