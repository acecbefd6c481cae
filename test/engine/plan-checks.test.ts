// Plan-time input checks (StageKind.planFacts / checkInputs) and errors of externalDigest: they stop
// the plan with a located ConfigError (exit code 2) before any stage runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../engine/config/errors.js';
import type { StageKind } from '../../engine/contract.js';
import { planFor, tempDir, testRegistry, writeExp } from './helpers.js';

const factsAsked: string[] = [];

const sourceKind: StageKind<{ size: number }> = {
  kind: 'source',
  version: 1,
  paramsSchema: { type: 'object', properties: { size: { type: 'integer' } }, required: ['size'], additionalProperties: false },
  async planFacts(p) {
    factsAsked.push(String(p.size));
    return { size: p.size };
  },
  async run() {},
};

const sinkKind: StageKind<{ min: number }> = {
  kind: 'sink',
  version: 1,
  paramsSchema: { type: 'object', properties: { min: { type: 'integer' } }, required: ['min'], additionalProperties: false },
  inputs: { required: ['from'] },
  checkInputs(p, inputs) {
    const size = inputs.from?.facts?.size as number | undefined;
    if (size !== undefined && size < p.min) throw new Error(`needs ${p.min} items, ${inputs.from!.stage} has ${size}`);
  },
  async run() {},
};

const brokenDigestKind: StageKind<Record<string, never>> = {
  kind: 'broken-digest',
  version: 1,
  paramsSchema: { type: 'object', additionalProperties: false },
  async externalDigest() {
    throw new Error('the dataset list is unreadable');
  },
  async run() {},
};

const registry = testRegistry([sourceKind, sinkKind, brokenDigestKind]);

test("checkInputs sees its upstream planFacts; a refusal is a ConfigError at the stage's needs", async (t) => {
  const dir = await tempDir(t);
  const file = await writeExp(
    dir,
    'exp.yaml',
    'stages:\n  src: { kind: source, params: { size: 3 } }\n  use:\n    kind: sink\n    needs: { from: src }\n    params: { min: 5 }\n',
  );
  await assert.rejects(planFor(file, registry), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.path, 'stages.use.needs');
    assert.equal(e.line, 5);
    assert.match(e.message, /sink stage "use": needs 5 items, src has 3/);
    return true;
  });
  const ok = await writeExp(
    dir,
    'ok.yaml',
    'stages:\n  src: { kind: source, params: { size: 9 } }\n  use:\n    kind: sink\n    needs: { from: src }\n    params: { min: 5 }\n',
  );
  assert.equal((await planFor(ok, registry)).instances.length, 2);
});

test('planFacts is only asked for when a consumer checks its inputs', async (t) => {
  const dir = await tempDir(t);
  factsAsked.length = 0;
  const file = await writeExp(dir, 'exp.yaml', 'stages:\n  src: { kind: source, params: { size: 7 } }\n');
  await planFor(file, registry);
  assert.deepEqual(factsAsked, []);
});

test("an externalDigest error is a ConfigError located at the stage's params", async (t) => {
  const dir = await tempDir(t);
  const file = await writeExp(dir, 'exp.yaml', 'stages:\n  data:\n    kind: broken-digest\n    params: {}\n');
  await assert.rejects(
    planFor(file, registry),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.path === 'stages.data.params' &&
      /broken-digest stage "data": the dataset list is unreadable/.test(e.message),
  );
});
