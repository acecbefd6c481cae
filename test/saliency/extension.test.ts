// A new saliency method is one module (info + typed compute) plus one table line: this test adds
// a trivial one to a copy of the table and checks dispatch, input checks and the name listing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineSaliencyMethod } from '../../ml/saliency/method.js';
import { byName, computeSaliency, SALIENCY_METHOD_NAMES, SALIENCY_METHOD_TABLE } from '../../ml/saliency/registry.js';
import { saliencyParamsSchema } from '../../stages/saliency/schema.js';

// The "module": a constant half map over the requested grid.
const half = defineSaliencyMethod(
  {
    name: 'half',
    title: 'Half baseline',
    needs: 'none',
    inputs: ['h', 'w'],
    resolution: 'any',
    classSpecific: false,
    caOnly: false,
    seeded: false,
  },
  (i) => ({ map: new Float32Array(i.h * i.w).fill(0.5), h: i.h, w: i.w, degenerate: true, reason: 'constant' }),
);
// The "table line".
const table = [...SALIENCY_METHOD_TABLE, half];

test('a method added to the table is dispatched with its declared inputs and rejected without them', async () => {
  const r = await computeSaliency('half', { h: 2, w: 3 }, table);
  assert.deepEqual(Array.from(r.map), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  await assert.rejects(computeSaliency('half', { h: 2 }, table), /method 'half' needs input 'w'/);
  await assert.rejects(computeSaliency('half', { h: 2, w: 3 }), /unknown method 'half'/, 'the shipped table does not have it');
  assert.equal(byName(table).half.title, 'Half baseline');
});

test('a name registered twice is an error', () => {
  assert.throws(() => byName([...table, half]), /method 'half' is registered twice/);
});

test("the saliency schema's method list is the registry's, in table order", () => {
  assert.deepEqual(
    [...saliencyParamsSchema.properties.methods.items.enum],
    SALIENCY_METHOD_TABLE.map((m) => m.info.name),
  );
  assert.deepEqual(
    SALIENCY_METHOD_NAMES,
    SALIENCY_METHOD_TABLE.map((m) => m.info.name),
  );
});
