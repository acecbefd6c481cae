// The metrics table: each image gets every metric that applies to it, and a metric added as one
// table line is computed, labelled and scaled like the shipped ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METRICS, metricLabel, metricScale, metricValues, type ImageEvidence, type MetricDef } from '../../ml/metrics/table.js';

const evidence = (withRegion: boolean): ImageEvidence => ({
  drop: 12,
  increase: 100,
  gain: 3,
  insertion: 0.7,
  deletion: 0.2,
  map: Float32Array.from([0, 0.25, 0.5, 1]),
  h: 2,
  w: 2,
  region: withRegion
    ? {
        map: Float32Array.from([0, 0, 0, 1]),
        status: 'ok',
        mask: Uint8Array.from([0, 0, 0, 1]),
        size: 2,
        keepConstant: false,
        tolerance: 0,
      }
    : undefined,
});

test('core metrics always, mask metrics only with a mask', () => {
  assert.deepEqual(metricValues(evidence(false)), { AD: 12, AG: 3, AI: 100, insertion: 0.7, deletion: 0.2 });
  const withMask = metricValues(evidence(true));
  assert.equal(withMask.pointing, 1, 'the maximum lies on the object');
  assert.equal(withMask.energy, 1, 'all the mass lies on the object');
});

test('ROAD metrics only when the evaluation ran ROAD; combined = (LeRF − MoRF)/2', () => {
  assert.equal(metricValues(evidence(false)).road, undefined);
  const v = metricValues({ ...evidence(false), road: { morf: 0.2, lerf: 0.6 } });
  assert.deepEqual([v.road_morf, v.road_lerf], [0.2, 0.6]);
  assert.ok(Math.abs(v.road! - 0.2) < 1e-12);
  assert.ok(Number.isNaN(metricValues({ ...evidence(false), road: { morf: 0.2 } }).road), 'MoRF only: no combined value');
  assert.equal(metricValues(evidence(false)).sanity_rank, undefined, 'sanity metrics only when the check ran');
  const s = metricValues({ ...evidence(false), sanity: { rank: 0.3, ssim: 0.6 } });
  assert.deepEqual([s.sanity_rank, s.sanity_ssim, s.road], [0.3, 0.6, undefined]);
});

test('labels carry the direction and AUC-like metrics are reported ×100', () => {
  assert.deepEqual(METRICS.map(metricLabel), [
    'AD↓',
    'AG↑',
    'AI↑',
    'I↑',
    'D↓',
    'PG↑',
    'EPG↑',
    'ROAD-MoRF↓',
    'ROAD-LeRF↑',
    'ROAD↑',
    'MPRT-ρ↓',
    'MPRT-SSIM↓',
  ]);
  assert.equal(metricScale('AD'), 1);
  assert.equal(metricScale('insertion'), 100);
  assert.equal(metricScale('not-a-metric'), 1);
});

test('a metric added as one table line is computed for every image', () => {
  const meanMap: MetricDef = {
    key: 'mean_map',
    label: 'M',
    direction: 'lower',
    scale: 100,
    needsRegion: false,
    inSummary: false,
    value: (e) => e.map.reduce((a, b) => a + b, 0) / e.map.length,
  };
  const table = [...METRICS, meanMap];
  assert.equal(metricValues(evidence(false), table).mean_map, 0.4375);
  assert.equal(metricLabel(meanMap), 'M↓');
  assert.equal(metricScale('mean_map', table), 100);
});
