import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lrAt, LrSchedule, type ScheduleConfig } from '../../ml/train/schedule.js';
import { resolveRecipe } from '../../ml/train/recipe.js';

const close = (a: number, b: number, msg = '') => assert.ok(Math.abs(a - b) <= 1e-12 + 1e-9 * Math.abs(b), `${msg} got ${a}, want ${b}`);

test('multistep per epoch: 0.1 → 0.01 at epoch 30 → 0.001 at 60 (torch counts milestones ≤ epoch)', () => {
  const cfg: ScheduleConfig = { kind: 'multistep', granularity: 'epoch', milestones: [30, 60, 90], gamma: 0.1 };
  const run = { epochs: 100, itersPerEpoch: 7 };
  const want: Array<[number, number]> = [
    [0, 0.1],
    [29, 0.1],
    [30, 0.01],
    [59, 0.01],
    [60, 0.001],
    [89, 0.001],
    [90, 0.0001],
    [99, 0.0001],
  ];
  for (const [e, lr] of want) close(lrAt(cfg, 0.1, { epoch: e, iter: 5 }, run), lr, `epoch ${e}`);
});

test('step schedule: base·γ^⌊e/s⌋, and per iteration the decay lands on the epoch boundary', () => {
  const cfg: ScheduleConfig = { kind: 'step', granularity: 'epoch', stepSize: 10, gamma: 0.5 };
  close(lrAt(cfg, 2, { epoch: 9, iter: 0 }, { epochs: 40, itersPerEpoch: 3 }), 2);
  close(lrAt(cfg, 2, { epoch: 25, iter: 0 }, { epochs: 40, itersPerEpoch: 3 }), 0.5);
  const perIter = { ...cfg, granularity: 'iter' as const, stepSize: 2 };
  close(lrAt(perIter, 1, { epoch: 1, iter: 9 }, { epochs: 6, itersPerEpoch: 10 }), 1);
  close(lrAt(perIter, 1, { epoch: 2, iter: 0 }, { epochs: 6, itersPerEpoch: 10 }), 0.5);
});

test('cosine with linear warm-up per iteration (SequentialLR of LinearLR and CosineAnnealingLR)', () => {
  // 10 epochs × 100 iterations, 2 warm-up epochs = 200 iterations, start factor 0.01, cosine over 800.
  const cfg: ScheduleConfig = { kind: 'cosine', granularity: 'iter', warmup: 2, warmupUnit: 'epoch', warmupStartFactor: 0.01, etaMin: 0 };
  const s = new LrSchedule(cfg, 1, { epochs: 10, itersPerEpoch: 100 });
  close(s.at({ epoch: 0, iter: 0 }), 0.01);
  close(s.at({ epoch: 0, iter: 50 }), 0.01 + (0.99 * 50) / 200);
  close(s.at({ epoch: 1, iter: 0 }), 0.505);
  close(s.at({ epoch: 2, iter: 0 }), 1);
  close(s.at({ epoch: 6, iter: 0 }), 0.5); // 400 of 800 cosine iterations: (1 + cos(π/2))/2
  close(s.at({ epoch: 4, iter: 0 }), (1 + Math.SQRT1_2) / 2); // 200/800 → cos(π/4)
  close(s.at({ epoch: 9, iter: 99 }), (1 + Math.cos((Math.PI * 799) / 800)) / 2);
});

test('cosine per epoch to eta_min, warm-up in iterations, and invalid configurations', () => {
  const cfg: ScheduleConfig = { kind: 'cosine', granularity: 'epoch', etaMin: 0.1 };
  close(lrAt(cfg, 1.1, { epoch: 50, iter: 3 }, { epochs: 100, itersPerEpoch: 10 }), 0.1 + 1 * 0.5);
  const warmIters: ScheduleConfig = { kind: 'constant', granularity: 'iter', warmup: 4, warmupUnit: 'iter', warmupStartFactor: 0.2 };
  close(lrAt(warmIters, 1, { epoch: 0, iter: 2 }, { epochs: 1, itersPerEpoch: 10 }), 0.2 + 0.8 * 0.5);
  close(lrAt(warmIters, 1, { epoch: 0, iter: 4 }, { epochs: 1, itersPerEpoch: 10 }), 1);
  assert.throws(
    () => lrAt({ ...warmIters, granularity: 'epoch' }, 1, { epoch: 0, iter: 0 }, { epochs: 2, itersPerEpoch: 3 }),
    /needs granularity 'iter'/,
  );
  assert.throws(() => lrAt({ ...cfg, warmup: 100 }, 1, { epoch: 0, iter: 0 }, { epochs: 100, itersPerEpoch: 3 }), /shorter than the run/);
  assert.throws(
    () => lrAt({ kind: 'multistep', granularity: 'epoch', milestones: [5, 3] }, 1, { epoch: 0, iter: 0 }, { epochs: 9, itersPerEpoch: 1 }),
    /milestones must be increasing/,
  );
});

test('recipe resnet: SGD 0.1 / 0.9 / 1e-4, multistep ×0.1 at 30/60/90', () => {
  const r = resolveRecipe('resnet', {}, 90);
  assert.deepEqual([r.optimizer.kind, r.optimizer.lr, r.optimizer.momentum, r.optimizer.weightDecay], ['sgd', 0.1, 0.9, 1e-4]);
  assert.deepEqual(r.schedule.milestones, [30, 60, 90]);
  close(lrAt(r.schedule, r.optimizer.lr, { epoch: 75, iter: 0 }, { epochs: 90, itersPerEpoch: 10 }), 0.001);
  assert.equal(r.ema, null);
  assert.ok(
    r.notes.some((n) => /90/.test(n)),
    'milestone 90 never applies in a 90-epoch run: noted',
  );
});

test('recipe vit: AdamW 9e-3 / 0.3, 10 warm-up epochs, cosine over the remaining epochs', () => {
  const run = { epochs: 100, itersPerEpoch: 50 };
  const r = resolveRecipe('vit', {}, run.epochs, run.itersPerEpoch);
  assert.deepEqual([r.optimizer.kind, r.optimizer.lr, r.optimizer.weightDecay], ['adamw', 9e-3, 0.3]);
  assert.deepEqual([r.mixup, r.cutmix, r.labelSmoothing], [0.2, 1.0, 0.11]);
  assert.ok(r.ema);
  close(lrAt(r.schedule, 9e-3, { epoch: 10, iter: 0 }, run), 9e-3);
  close(lrAt(r.schedule, 9e-3, { epoch: 55, iter: 0 }, run), 4.5e-3); // 45 of 90 cosine epochs
  close(lrAt(r.schedule, 9e-3, { epoch: 5, iter: 0 }, run), 9e-3 * (0.01 + (0.99 * 250) / 500));
  // A 20-epoch run: the preset warm-up shrinks to a fifth of it, and the cosine spans the other 16.
  const short = resolveRecipe('vit', {}, 20, 10);
  assert.equal(short.schedule.warmup, 4);
  assert.ok(short.notes.length > 0);
  close(lrAt(short.schedule, 9e-3, { epoch: 12, iter: 0 }, { epochs: 20, itersPerEpoch: 10 }), 4.5e-3);
});

test('recipe overrides: fields replace preset values, typos and impossible values are rejected', () => {
  const r = resolveRecipe('vit', { optimizer: { lr: 1e-3 }, labelSmoothing: 0, ema: null, schedule: { warmup: 3 } }, 30);
  assert.equal(r.optimizer.lr, 1e-3);
  assert.equal(r.optimizer.weightDecay, 0.3);
  assert.equal(r.labelSmoothing, 0);
  assert.equal(r.ema, null);
  assert.equal(r.schedule.warmup, 3);
  const sgd = resolveRecipe('vit', { optimizer: { kind: 'sgd', momentum: 0.5 } }, 30);
  assert.equal(sgd.optimizer.kind, 'sgd');
  assert.equal(sgd.optimizer.betas, undefined);
  const withEma = resolveRecipe('resnet', { ema: { decay: 0.999 } }, 90);
  assert.equal(withEma.ema?.decay, 0.999);
  assert.equal(withEma.ema?.every, 1);
  assert.throws(() => resolveRecipe('resnet', { optimizer: { lrr: 1 } as never }, 90), /'optimizer\.lrr': unknown field/);
  assert.throws(() => resolveRecipe('vit', { schedule: { warmup: 30 } }, 20), /shorter than the run/);
  assert.throws(() => resolveRecipe('vit', { labelSmoothing: 1.5 }, 20), /labelSmoothing/);
  assert.throws(() => resolveRecipe('nope' as never, {}, 20), /unknown recipe 'nope'/);
});
