// The host placement of the optimizers (JS over Float32Arrays, float32 rounding at every op) must
// give exactly the bits of the device placement (tfjs ops) on the backend under test: the native
// TensorFlow backend trains with the host update, a checkpoint may be resumed on another backend,
// and a rerun must reproduce its digests. Checked bit for bit, not within a tolerance.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initTestBackend } from '../support/backend.js';
import {
  createOptimizer,
  defaultPlacement,
  HOST_UPDATE_MAX_ELEMENTS,
  placementForActiveBackend,
  type OptimizerConfig,
  type ParamGroupSpec,
  type UpdatePlacement,
} from '../../ml/train/optim.js';
import { mulberry32 } from '../../ml/random/mulberry32.js';

before(initTestBackend);

// proj.weight is above HOST_UPDATE_MAX_ELEMENTS: with 'host' it stays on the device (mixed placement).
const SHAPES: Record<string, number[]> = { 'conv.weight': [3, 3, 4, 5], 'bn.weight': [5], 'fc.bias': [7], 'proj.weight': [513, 512] };

function values(seed: number, n: number, scale: number): Float32Array {
  const r = mulberry32(seed);
  // Mixed magnitudes and signs, exact zeros included: the cases where a rounding difference shows.
  return Float32Array.from({ length: n }, (_, i) => (i % 11 === 0 ? 0 : (r() - 0.5) * scale * Math.pow(10, (i % 5) - 2)));
}

function makeVars(seed: number): Record<string, tf.Variable> {
  return Object.fromEntries(
    Object.entries(SHAPES).map(([k, s], j) => [
      k,
      tf.variable(
        tf.tensor(
          values(
            seed + j,
            s.reduce((a, b) => a * b, 1),
            2,
          ),
          s,
        ),
        true,
      ),
    ]),
  );
}

const GROUPS: ParamGroupSpec[] = [
  { names: ['conv.weight', 'proj.weight'], lrMult: 0.1 },
  { names: ['bn.weight', 'fc.bias'], weightDecay: 0 },
];

/** Parameters and state after `steps` updates with seeded gradients (some steps skip a variable). */
function train(cfg: OptimizerConfig, placement: UpdatePlacement, steps: number, groups?: ParamGroupSpec[]) {
  const vars = makeVars(1);
  const opt = createOptimizer(vars, cfg, groups, placement);
  for (let s = 0; s < steps; s++) {
    opt.lr = cfg.lr * (1 - s / (2 * steps));
    const grads: Record<string, tf.Tensor> = {};
    for (const [k, shape] of Object.entries(SHAPES)) {
      if (k === 'fc.bias' && s === 1) continue; // no gradient this step: torch skips the parameter
      grads[k] = tf.tensor(values(100 + 7 * s + k.length, vars[k]!.size, 1), shape);
    }
    opt.step(grads);
    tf.dispose(Object.values(grads));
  }
  const params = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));
  const state = opt.state();
  opt.dispose();
  tf.dispose(Object.values(vars));
  return { params, state };
}

function assertSameBits(a: Record<string, Float32Array>, b: Record<string, Float32Array>, what: string): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `${what}: keys`);
  for (const k of Object.keys(a)) {
    const x = new Uint32Array(a[k]!.buffer, a[k]!.byteOffset, a[k]!.length);
    const y = new Uint32Array(b[k]!.buffer, b[k]!.byteOffset, b[k]!.length);
    const i = x.findIndex((v, j) => v !== y[j]);
    assert.equal(i, -1, `${what} '${k}'[${i}]: device ${a[k]![i]} vs host ${b[k]![i]}`);
  }
}

const CONFIGS: [string, OptimizerConfig][] = [
  ['sgd', { kind: 'sgd', lr: 0.1 }],
  ['sgd momentum + dampening + wd', { kind: 'sgd', lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-4 }],
  ['sgd nesterov + wd', { kind: 'sgd', lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 5e-4 }],
  ['adam', { kind: 'adam', lr: 0.003 }],
  ['adam coupled wd', { kind: 'adam', lr: 0.003, weightDecay: 0.01, betas: [0.8, 0.99], eps: 1e-6 }],
  ['adamw', { kind: 'adamw', lr: 0.003, weightDecay: 0.05 }],
];

for (const [name, cfg] of CONFIGS) {
  for (const groups of [undefined, GROUPS]) {
    test(`${name}${groups ? ' (param groups)' : ''}: host and device updates give the same bits`, () => {
      const dev = train(cfg, 'device', 5, groups);
      const host = train(cfg, 'host', 5, groups);
      assertSameBits(dev.params, host.params, 'parameters');
      assertSameBits(dev.state, host.state, 'optimizer state');
    });
  }
}

test('a checkpointed state resumes across placements with the same bits', () => {
  const cfg: OptimizerConfig = { kind: 'adamw', lr: 0.003, weightDecay: 0.05 };
  const straight = train(cfg, 'device', 4);
  // 2 steps on the device, export, load into a host optimizer, 2 more steps.
  const vars = makeVars(1);
  const first = createOptimizer(vars, cfg, undefined, 'device');
  const second = createOptimizer(vars, cfg, undefined, 'host');
  for (let s = 0; s < 4; s++) {
    const opt = s < 2 ? first : second;
    if (s === 2) second.loadState(first.state());
    opt.lr = cfg.lr * (1 - s / 8);
    const grads: Record<string, tf.Tensor> = {};
    for (const [k, shape] of Object.entries(SHAPES)) {
      if (k === 'fc.bias' && s === 1) continue;
      grads[k] = tf.tensor(values(100 + 7 * s + k.length, vars[k]!.size, 1), shape);
    }
    opt.step(grads);
    tf.dispose(Object.values(grads));
  }
  const params = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));
  assertSameBits(straight.params, params, 'parameters');
  assertSameBits(straight.state, second.state(), 'optimizer state');
  first.dispose();
  second.dispose();
  tf.dispose(Object.values(vars));
});

test('with the host placement, a variable above HOST_UPDATE_MAX_ELEMENTS keeps its update and slots on the device', () => {
  assert.ok(513 * 512 > HOST_UPDATE_MAX_ELEMENTS && 3 * 3 * 4 * 5 <= HOST_UPDATE_MAX_ELEMENTS);
  const vars = makeVars(1);
  const opt = createOptimizer(vars, { kind: 'adam', lr: 0.01 }, undefined, 'host');
  const grads = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, tf.onesLike(v)]));
  opt.step(grads);
  const slots = (opt as unknown as { slots: Map<string, Map<string, unknown>> }).slots.get('exp_avg')!;
  assert.ok(slots.get('proj.weight') instanceof tf.Tensor);
  assert.ok(slots.get('conv.weight') instanceof Float32Array);
  tf.dispose([...Object.values(grads), ...Object.values(vars)]);
  opt.dispose();
});

test('the host update is chosen only for TensorFlow on the CPU', () => {
  assert.equal(defaultPlacement('tensorflow', 'cpu'), 'host');
  assert.equal(defaultPlacement('tensorflow', 'gpu'), 'device');
  assert.equal(defaultPlacement('wasm', 'cpu'), 'device');
  assert.equal(defaultPlacement('cpu', 'cpu'), 'device');
  assert.equal(placementForActiveBackend({ CA_PIPE_OPTIMIZER_UPDATE: 'host' }), 'host');
  assert.equal(placementForActiveBackend({ CA_PIPE_OPTIMIZER_UPDATE: 'device' }), 'device');
  assert.throws(() => placementForActiveBackend({ CA_PIPE_OPTIMIZER_UPDATE: 'gpu' }), /not one of host, device/);
});

for (const placement of ['host', 'device'] as const) {
  test(`the ${placement} update keeps no tensor of an earlier step alive`, () => {
    const vars = makeVars(3);
    const opt = createOptimizer(vars, { kind: 'adamw', lr: 0.003, weightDecay: 0.05 }, undefined, placement);
    const stepOnce = (): void => {
      const grads = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, tf.onesLike(v)]));
      opt.step(grads);
      tf.dispose(Object.values(grads));
    };
    stepOnce(); // creates the slots
    const after1 = tf.memory();
    for (let s = 0; s < 5; s++) stepOnce();
    const after6 = tf.memory();
    assert.equal(after6.numTensors, after1.numTensors, 'tensors');
    assert.equal(after6.numBytes, after1.numBytes, 'bytes');
    opt.dispose();
    tf.dispose(Object.values(vars));
  });
}
