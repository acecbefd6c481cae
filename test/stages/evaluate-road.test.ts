// The evaluate stage with ROAD: per-image road_morf / road_lerf / road, the resolved protocol and
// the per-percentage curves in evaluation.json, and its params in the evaluate key only.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { setBackendLogger } from '../../ml/backend/index.js';
import type { SaliencyParams } from '../../stages/saliency/schema.js';
import type { EvaluateParams } from '../../stages/evaluate/schema.js';
import { ROAD_DEFAULTS } from '../../ml/metrics/road.js';
import { EVALUATE_TEST_PARAMS, planKeys, SALIENCY_TEST_PARAMS, saliencyThenEvaluate } from '../explain/stage-helpers.js';

before(() => setBackendLogger(() => {}));

const SAL: SaliencyParams = { ...SALIENCY_TEST_PARAMS, methods: ['gradcam', 'random'] };
const ROAD = { percentages: [0.2, 0.5], orders: ['morf', 'lerf'] as Array<'morf' | 'lerf'>, noise: 0.01, seed: 3 };
const EV: EvaluateParams = { ...EVALUATE_TEST_PARAMS, road: ROAD };

test('evaluate with ROAD: per-image values, protocol and curves recorded, consistent with each other', async () => {
  const { summary, rows } = await saliencyThenEvaluate({
    prefix: 'ca-pipe-evaluate-road-',
    head: 'gap',
    index: { classes: 2, per_class: 3 },
    saliency: SAL,
    evaluate: EV,
  });
  assert.deepEqual(summary.road.protocol, { ...ROAD_DEFAULTS, ...ROAD }, 'the resolved ROAD protocol is recorded');
  assert.deepEqual(summary.road.protocol.fraction, { morf: 'removed', lerf: 'kept' });
  for (const m of SAL.methods) {
    const mine = rows.filter((r) => r.method === m);
    assert.equal(mine.length, 3);
    for (const r of mine) {
      for (const k of ['road_morf', 'road_lerf']) assert.ok(r[k] >= 0 && r[k] <= 1, `${m} ${k} = ${r[k]}`);
      assert.ok(Math.abs(r.road - (r.road_lerf - r.road_morf) / 2) < 1e-12, 'combined = (LeRF − MoRF)/2');
    }
    const c = summary.road.methods[m];
    assert.equal(c.morf.prob.length, 2);
    assert.equal(c.lerf.accuracy.length, 2);
    // The per-image value is the mean over the percentages, so the mean of the per-percentage
    // curve equals the mean of the per-image values (same images: all ok or kept constant).
    const kept = mine.filter((r) => r.status === 'ok' || m === 'random');
    const perImage = kept.reduce((a, r) => a + r.road_morf, 0) / kept.length;
    assert.equal(c.n, kept.length);
    assert.ok(Math.abs((c.morf.prob[0] + c.morf.prob[1]) / 2 - perImage) < 1e-9, `${m}: curve vs per-image`);
    assert.ok(Math.abs(summary.methods[m].road_morf.mean - perImage) < 1e-9);
    for (const a of [...c.morf.accuracy, ...c.lerf.accuracy]) assert.ok(a >= 0 && a <= 1);
  }
});

test('ROAD params change the evaluate key only; without them the key is the one of before', async () => {
  const plan = (road: string) => planKeys({ sal: '{ methods: [gradcam, ones] }', ev: `{ ${road} }` });
  const none = await plan('');
  const a = await plan('road: {}');
  const b = await plan('road: { percentages: [0.5] }');
  for (const s of ['data', 'train', 'sal']) assert.equal(none[s].key, a[s].key, s);
  assert.notEqual(none.ev.key, a.ev.key);
  assert.notEqual(a.ev.key, b.ev.key);
  assert.deepEqual(a.ev.params.road, { percentages: [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9], orders: ['morf', 'lerf'], noise: 0.01, seed: 0 });
  assert.equal(none.ev.params.road, undefined);
});
