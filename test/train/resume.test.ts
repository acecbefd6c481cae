// Interrupt-and-resume gives the same bits as an uninterrupted run: optimizer (AdamW and SGD),
// schedule position, EMA and the mixup RNG all go through a checkpoint file and back.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useCpu } from './tf-cpu.js';
import { Rng } from '../../ml/data/rng.js';
import { createOptimizer, type Optimizer, type OptimizerConfig } from '../../ml/train/optim.js';
import { LrSchedule, type ScheduleConfig } from '../../ml/train/schedule.js';
import { mixBatch } from '../../ml/train/mixup.js';
import { Ema } from '../../ml/train/ema.js';
import { clipGradNorm } from '../../ml/train/clip.js';
import { saveCheckpoint, loadLatestCheckpoint } from '../../ml/train/checkpoint.js';
import { captureTrainState, restoreTrainState } from '../../ml/train/train-state.js';

before(useCpu);

const B = 6,
  D = 3,
  K = 4,
  ITERS_PER_EPOCH = 4,
  EPOCHS = 3;
const data = (() => {
  const r = new Rng(2024);
  return { x: Float32Array.from({ length: 5 * B * D }, () => r.normal()), y: Int32Array.from({ length: 5 * B }, () => r.int(K)) };
})();

interface TrainerState {
  vars: Record<string, tf.Variable>;
  opt: Optimizer;
  ema: Ema;
  rng: Rng;
  iteration: number;
}

function fresh(cfg: OptimizerConfig): TrainerState {
  const init = new Rng(7);
  const vars = {
    w: tf.variable(
      tf.tensor2d(
        Float32Array.from({ length: D * K }, () => init.normal() * 0.1),
        [D, K],
      ),
      true,
      `w${Math.random()}`,
    ),
    b: tf.variable(tf.zeros([K]), true, `b${Math.random()}`),
  };
  return {
    vars,
    opt: createOptimizer(vars, cfg, [{ names: ['w'] }, { names: ['b'], weightDecay: 0 }]),
    ema: new Ema(vars, { decay: 0.9, warmup: true }),
    rng: new Rng(99),
    iteration: 0,
  };
}

/** One step of softmax regression on mixed inputs; gradient written out: dL/dlogits = (p − t)/B. */
function trainStep(s: TrainerState, sched: LrSchedule): void {
  const epoch = Math.floor(s.iteration / ITERS_PER_EPOCH);
  const iter = s.iteration % ITERS_PER_EPOCH;
  const k = s.iteration % 5;
  const mixed = mixBatch(
    data.x.slice(k * B * D, (k + 1) * B * D),
    [B, 1, 1, D],
    data.y.slice(k * B, (k + 1) * B),
    { mixup: 0.4, cutmix: 0, classes: K, labelSmoothing: 0.1 },
    () => s.rng.float(),
  );
  const grads = tf.tidy(() => {
    const x = tf.tensor2d(mixed.images, [B, D]);
    const t = tf.tensor2d(mixed.targets, [B, K]);
    const dl = tf.div(tf.sub(tf.softmax(tf.add(tf.matMul(x, s.vars.w), s.vars.b)), t), B);
    return { w: tf.matMul(x, dl, true, false), b: tf.sum(dl, 0) };
  });
  const clipped = clipGradNorm(grads, 0.05);
  tf.dispose(grads);
  s.opt.lr = sched.at({ epoch, iter });
  s.opt.step(clipped.grads);
  tf.dispose(clipped.grads);
  s.ema.update(s.vars);
  s.iteration++;
}

function snapshot(s: TrainerState): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [n, v] of Object.entries(s.vars))
    out[`w/${n}`] = Array.from(new Uint32Array(Float32Array.from(v.dataSync() as Float32Array).buffer));
  for (const [n, a] of Object.entries({ ...s.ema.state(), ...s.opt.state() }))
    out[n] = Array.from(new Uint32Array(Float32Array.from(a).buffer));
  out.rng = s.rng.state();
  return out;
}

for (const cfg of [
  { kind: 'adamw', lr: 0.05, weightDecay: 0.3 },
  { kind: 'sgd', lr: 0.5, momentum: 0.9, nesterov: true, weightDecay: 1e-3 },
] as OptimizerConfig[]) {
  test(`${cfg.kind}: save → load → continue is bit-identical to an uninterrupted run`, async () => {
    const schedCfg: ScheduleConfig = { kind: 'cosine', granularity: 'iter', warmup: 1, warmupUnit: 'epoch', warmupStartFactor: 0.1 };
    const sched = new LrSchedule(schedCfg, cfg.lr, { epochs: EPOCHS, itersPerEpoch: ITERS_PER_EPOCH });
    const total = EPOCHS * ITERS_PER_EPOCH;

    const straight = fresh(cfg);
    for (let i = 0; i < total; i++) trainStep(straight, sched);

    const dir = mkdtempSync(join(tmpdir(), 'resume-'));
    const first = fresh(cfg);
    for (let i = 0; i < 7; i++) trainStep(first, sched);
    await saveCheckpoint(
      dir,
      captureTrainState(
        { vars: first.vars, optimizer: first.opt, ema: first.ema, rngs: { mixup: first.rng } },
        {
          epoch: Math.floor(first.iteration / ITERS_PER_EPOCH),
          batchInEpoch: first.iteration % ITERS_PER_EPOCH,
          iteration: first.iteration,
          best: null,
          metrics: [],
        },
      ),
    );
    // Keep training the first process a little (state that must NOT leak into the resumed one).
    trainStep(first, sched);

    const ck = (await loadLatestCheckpoint(dir))!;
    const resumed = fresh(cfg);
    resumed.iteration = restoreTrainState(
      { vars: resumed.vars, optimizer: resumed.opt, ema: resumed.ema, rngs: { mixup: resumed.rng } },
      ck,
    ).iteration;
    assert.equal(ck.meta.epoch * ITERS_PER_EPOCH + ck.meta.batchInEpoch, 7);
    for (let i = resumed.iteration; i < total; i++) trainStep(resumed, sched);

    assert.deepEqual(snapshot(resumed), snapshot(straight));
    // And the run really moved: the weights differ from their initial values.
    assert.notDeepEqual(snapshot(fresh(cfg))['w/w'], snapshot(straight)['w/w']);
  });
}
