// Forward counts of the evaluate stage (ml/metrics/cost.ts) against hand counts, and against the
// scoring code itself: the images the metrics actually score on a 4×4 image must be the table's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateCost } from '../../ml/metrics/cost.js';
import { confidenceEval } from '../../ml/metrics/confidence.js';
import { insertionDeletion } from '../../ml/metrics/insdel.js';
import { resolveProtocol } from '../../ml/metrics/protocol.js';
import { METRICS, type MetricDef } from '../../ml/metrics/table.js';

// The default metrics: ROAD and the sanity check are opt-in.
const ALL = (METRICS as readonly MetricDef[]).filter((m) => !m.optIn).map((m) => m.key);

test('ca-stream at 224: 57 forwards for insertion + deletion, 2 for AD/AI/AG, 1 clean per image', () => {
  // Steps of 8 rows of 224 px: n = 224·224 / (8·224) = 28. Deletion scores its n + 1 = 29 states,
  // insertion its first n = 28 (its last is the clean image): 57. AD/AI/AG: clean + masked = 2.
  const c = evaluateCost(resolveProtocol('ca-stream'), 224, ALL);
  assert.deepEqual(c, { perImage: 1, perMap: 57 + 2, byGroup: { 'insertion/deletion': 57, 'AD/AI/AG': 2 }, unknown: [] });
  assert.equal(evaluateCost(resolveProtocol('ca-stream'), 224, ['insertion', 'deletion']).perMap, 57);
  assert.equal(evaluateCost(resolveProtocol('ca-stream'), 224, ['AD', 'AG', 'AI', 'pointing', 'energy']).perMap, 2);
});

test('rise protocol at 224: one row per step, 2·224 + 1 = 449 insertion/deletion forwards', () => {
  assert.equal(evaluateCost(resolveProtocol('rise'), 224, ['insertion']).perMap, 449);
  // 64 px under ca-stream: n = 64/8 = 8 → 17 + 2.
  assert.equal(evaluateCost(resolveProtocol('ca-stream'), 64, ALL).perMap, 19);
});

test('ROAD: one imputed image per order and percentage (2 × 7 official); the sanity check is not counted', () => {
  const all = METRICS.map((m) => m.key);
  const c = evaluateCost(resolveProtocol('ca-stream'), 224, all, 2 * 7);
  assert.deepEqual(c.byGroup, { 'insertion/deletion': 57, 'AD/AI/AG': 2, ROAD: 14 });
  assert.equal(c.perMap, 73);
  assert.deepEqual(c.unknown, ['sanity_rank', 'sanity_ssim']);
});

test('a metric with no count is listed, not guessed', () => {
  assert.deepEqual(evaluateCost(resolveProtocol('ca-stream'), 224, ['AD', 'brand-new']).unknown, ['brand-new']);
});

test('the count is what the scoring code scores: one 4×4 image, steps of one row', async () => {
  const protocol = resolveProtocol('ca-stream', { insdel: { step: { unit: 'rows', count: 1 }, insertionStart: 'zeros' } });
  let scored = 0;
  const score = async (_x: Float32Array, n: number) => {
    scored += n;
    return new Float32Array(n * 2).fill(0.5);
  };
  const images = new Float32Array(16).map((_, i) => i / 16);
  const sal = new Float32Array(16).map((_, i) => i);
  const common = { images, dims: { c: 1, h: 4, w: 4 }, saliency: sal, targets: [0], protocol, mean: [0], std: [1], score };
  await insertionDeletion(common);
  const insdel = scored;
  await confidenceEval(common);
  // n = 4 rows: 2·4 + 1 = 9, then clean + masked = 2.
  assert.equal(insdel, 9);
  assert.equal(scored - insdel, 2);
  assert.equal(evaluateCost(protocol, 4, ALL).perMap, 11);
});
