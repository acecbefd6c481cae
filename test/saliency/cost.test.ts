// Forwards per saliency map (ml/saliency/cost.ts) against hand counts from the methods' definitions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapCost, MAP_COSTS } from '../../ml/saliency/cost.js';
import { getBackbone } from '../../ml/models/backbones.js';
import { lastReading } from '../../ml/models/backbone.js';
import { SALIENCY_METHOD_NAMES } from '../../ml/saliency/registry.js';

test('Score-CAM on ResNet-50: one masked image per layer4 channel = 2,048 forwards per map', () => {
  const channels = lastReading(getBackbone('resnet50')).channels;
  assert.equal(channels, 2048);
  assert.deepEqual(mapCost({ method: 'scorecam', channels, imageSize: 224 }), { forwards: 2048, backwards: 0, tailForwards: 0 });
  // ResNet-18's layer4 has 512 channels.
  assert.equal(mapCost({ method: 'scorecam', channels: lastReading(getBackbone('resnet18')).channels, imageSize: 224 })!.forwards, 512);
});

test('gradient CAMs one backward, Ablation-CAM C + 1 head passes, RISE one forward per mask, baselines none', () => {
  for (const m of ['gradcam', 'gradcampp', 'xgradcam', 'layercam'])
    assert.deepEqual(mapCost({ method: m, channels: 2048, imageSize: 224 }), { forwards: 0, backwards: 1, tailForwards: 0 }, m);
  assert.deepEqual(mapCost({ method: 'ablationcam', channels: 2048, imageSize: 224 }), { forwards: 0, backwards: 0, tailForwards: 2049 });
  assert.equal(mapCost({ method: 'rise', imageSize: 224, riseMasks: 6000 })!.forwards, 6000);
  for (const m of ['ca-attention', 'eigencam', 'random', 'center', 'ones'])
    assert.deepEqual(mapCost({ method: m, channels: 2048, imageSize: 224 }), { forwards: 0, backwards: 0, tailForwards: 0 }, m);
});

test('unknown method or channels: "cost unknown" (undefined), never a throw', () => {
  assert.equal(mapCost({ method: 'no-such-method', imageSize: 224 }), undefined);
  assert.equal(mapCost({ method: 'scorecam', imageSize: 224 }), undefined);
  assert.equal(mapCost({ method: 'toString', imageSize: 224 }), undefined);
});

test('the methods of issue 16: Opti-CAM T + 1 forwards and T backwards, FullGrad one of each, ShapleyCAM a second-order head pass', () => {
  // Opti-CAM: T Adam steps, each a masked forward and its backward, then the final map's forward.
  assert.deepEqual(mapCost({ method: 'opticam', channels: 2048, imageSize: 224 }), { forwards: 51, backwards: 50, tailForwards: 0 });
  assert.deepEqual(mapCost({ method: 'opticam', imageSize: 224, opticamSteps: 10 }), { forwards: 11, backwards: 10, tailForwards: 0 });
  assert.deepEqual(mapCost({ method: 'fullgrad', imageSize: 224 }), { forwards: 1, backwards: 1, tailForwards: 0 });
  assert.deepEqual(mapCost({ method: 'shapleycam', imageSize: 224 }), { forwards: 0, backwards: 1, tailForwards: 1 });
  for (const m of ['hirescam', 'gradcam-elementwise', 'eigengradcam', 'finercam'])
    assert.deepEqual(mapCost({ method: m, imageSize: 224 }), { forwards: 0, backwards: 1, tailForwards: 0 }, m);
  for (const m of ['fem', 'kpcacam'])
    assert.deepEqual(mapCost({ method: m, imageSize: 224 }), { forwards: 0, backwards: 0, tailForwards: 0 }, m);
});

test('every method of the registry has a count', () => {
  // A new method's module comes with its line in MAP_COSTS; without it the plan would say "cost unknown".
  assert.deepEqual(
    SALIENCY_METHOD_NAMES.filter((m) => !(m in MAP_COSTS)),
    [],
  );
});
