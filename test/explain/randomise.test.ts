// The cascade of the sanity check: its order, what each step re-initialises and how.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cascadeSteps, randomisedModel, reinitTensor } from '../../ml/explain/randomise.js';
import { InitRng } from '../../ml/random/init.js';
import type { FloatTensor, LoadedModel } from '../../ml/explain/model-dir.js';

const t = (...shape: number[]): FloatTensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(7) });
const W = new Map<string, FloatTensor>([
  ['conv1.weight', t(2, 3, 3, 3)],
  ['bn1.weight', t(2)],
  ['bn1.bias', t(2)],
  ['bn1.running_mean', t(2)],
  ['bn1.running_var', t(2)],
  ['layer1.0.conv1.weight', t(2, 2, 3, 3)],
  ['layer2.0.conv1.weight', t(4, 2, 3, 3)],
  ['layer10.0.conv1.weight', t(4, 4, 1, 1)],
  ['cls_token', t(1, 1, 4)],
  ['l4.to_out.1.weight', t(4, 4)],
  ['l4.to_out.1.bias', t(4)],
  ['fc.weight', t(3, 4)],
  ['fc.bias', t(3)],
]);

test('cascade: classifier, CA head, backbone stages from the last (numerically, layer10 before layer2) to the stem, cumulative', () => {
  const steps = cascadeSteps(W);
  assert.deepEqual(
    steps.map((s) => s.name),
    ['classifier', 'head', 'layer10', 'layer2', 'layer1', 'stem'],
  );
  assert.deepEqual(steps[0]!.tensors, ['fc.bias', 'fc.weight']);
  assert.deepEqual(steps[1]!.tensors.slice(2).sort(), ['cls_token', 'l4.to_out.1.bias', 'l4.to_out.1.weight']);
  assert.equal(steps.at(-1)!.tensors.length, W.size, 'the last step randomises everything');
  for (let k = 1; k < steps.length; k++)
    assert.ok(
      steps[k - 1]!.tensors.every((n) => steps[k]!.tensors.includes(n)),
      'cumulative',
    );
  // A GAP model has no head step, even when its weights file carries (unused) head tensors.
  const gap = new Map([...W].filter(([n]) => !n.startsWith('l4.') && n !== 'cls_token'));
  for (const [w, withHead] of [
    [gap, true],
    [W, false],
  ] as const) {
    const s = cascadeSteps(w, withHead);
    assert.deepEqual(
      s.map((x) => x.name),
      ['classifier', 'layer10', 'layer2', 'layer1', 'stem'],
    );
    assert.ok(!s.at(-1)!.tensors.includes('cls_token'));
  }
  assert.throws(() => cascadeSteps(new Map([['backbone.conv.weight', t(2, 2)]])), /torchvision weight names/);
});

test('cascade on the features.N layout (ConvNeXt, EfficientNet): features.11 before features.2, features.0 the stem, layer_scale kept', () => {
  // ConvNeXt-like names: stem features.0, a block with a layer_scale, a downsampling entry,
  // a two-digit stage, and the LayerNorm + Linear classifier.
  const cx = new Map<string, FloatTensor>([
    ['features.0.0.weight', t(4, 3, 2, 2)],
    ['features.0.1.weight', t(4)],
    ['features.1.0.block.0.weight', t(4, 1, 3, 3)],
    ['features.1.0.layer_scale', t(4, 1, 1)],
    ['features.2.1.weight', t(8, 4, 2, 2)],
    ['features.11.0.block.3.weight', t(8, 8)],
    ['classifier.0.weight', t(8)],
    ['classifier.2.weight', t(3, 8)],
    ['classifier.2.bias', t(3)],
  ]);
  const steps = cascadeSteps(cx, false);
  assert.deepEqual(
    steps.map((s) => s.name),
    ['classifier', 'features.11', 'features.2', 'features.1', 'stem'],
  );
  assert.deepEqual(steps[0]!.tensors, ['classifier.0.weight', 'classifier.2.bias', 'classifier.2.weight']);
  assert.deepEqual(steps.at(-1)!.tensors.slice(-2), ['features.0.0.weight', 'features.0.1.weight']);
  // PyTorch's reset_parameters never touches ConvNeXt's bare layer_scale parameter.
  assert.ok(!steps.at(-1)!.tensors.includes('features.1.0.layer_scale'));
  assert.equal(steps.at(-1)!.tensors.length, cx.size - 1);
});

test('re-initialisation: U(±1/√fan_in) for matrices and their biases, BatchNorm reset, seeded per name', () => {
  const rng = new InitRng(5);
  const fc = reinitTensor('fc.weight', W.get('fc.weight')!, W, rng);
  // fan_in of a 3×4 linear weight is 4: bound 0.5.
  assert.ok(fc.data.every((v) => Math.abs(v) <= 0.5) && fc.data.some((v) => Math.abs(v) > 0.1));
  const conv = reinitTensor('conv1.weight', W.get('conv1.weight')!, W, rng);
  // fan_in 3·3·3 = 27: bound 1/√27 ≈ 0.192.
  assert.ok(conv.data.every((v) => Math.abs(v) <= 1 / Math.sqrt(27) + 1e-7));
  const bias = reinitTensor('fc.bias', W.get('fc.bias')!, W, rng);
  assert.ok(bias.data.every((v) => Math.abs(v) <= 0.5) && bias.data.some((v) => v !== 0), 'linear bias from its weight’s fan-in');
  assert.deepEqual(Array.from(reinitTensor('bn1.weight', W.get('bn1.weight')!, W, rng).data), [1, 1]);
  assert.deepEqual(Array.from(reinitTensor('bn1.bias', W.get('bn1.bias')!, W, rng).data), [0, 0]);
  assert.deepEqual(Array.from(reinitTensor('bn1.running_mean', W.get('bn1.running_mean')!, W, rng).data), [0, 0]);
  assert.deepEqual(Array.from(reinitTensor('bn1.running_var', W.get('bn1.running_var')!, W, rng).data), [1, 1]);
  const model = { weights: W } as unknown as LoadedModel;
  const steps = cascadeSteps(W);
  const a = randomisedModel(model, steps[0]!, 1);
  // Same seed and name: the same values whichever step re-initialises the tensor.
  assert.deepEqual(a.weights.get('fc.weight'), randomisedModel(model, steps[3]!, 1).weights.get('fc.weight'));
  assert.notDeepEqual(a.weights.get('fc.weight'), randomisedModel(model, steps[0]!, 2).weights.get('fc.weight'));
  assert.equal(a.weights.get('conv1.weight'), W.get('conv1.weight'), 'later groups stay trained (shared)');
  assert.equal(W.get('fc.weight')!.data[0], 7, 'the trained weights are not modified');
});
