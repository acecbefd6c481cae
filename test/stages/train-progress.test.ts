// Progress updates of the train stage, as a collecting observer sees them: feature extraction is a
// phase counted in images (train + val images) with its own message, then every epoch is a batch
// bar; at no point does the reporter hold one phase's count against another phase's total.
// Every call is snapshotted (what an unthrottled reporter would show) and also forwarded to the
// engine's ThrottledProgress, whose emissions (what the UI and events.jsonl get) are checked too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ProgressReporter } from '../../engine/contract.js';
import type { ProgressUpdate } from '../../engine/run/executor.js';
import { ThrottledProgress } from '../../engine/run/progress.js';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { trainStage } from '../../stages/train/index.js';
import { fakeInit, stageCtx, syntheticIndex, tmp as tmpDir } from './train-helpers.js';

interface Snap extends ProgressUpdate {
  call: 'total' | 'tick' | 'set' | 'message';
  /** tick(n)'s n. */
  n?: number;
}

/** Keeps the reporter state the way the engine does and records it after every call. */
class Recorder implements ProgressReporter {
  state: ProgressUpdate = { done: 0 };
  snaps: Snap[] = [];
  emitted: ProgressUpdate[] = [];
  private throttled = new ThrottledProgress((p) => this.emitted.push(p));
  onTick?: (done: number) => void;

  private snap(call: Snap['call'], n?: number): void {
    this.snaps.push({ call, ...this.state, ...(n !== undefined && { n }) });
  }
  /** Counts after each real tick (tick(0) marks a phase switch, not work) in `unit`. */
  ticks(unit: string, snaps = this.snaps): number[] {
    return snaps.filter((s) => s.call === 'tick' && s.n! > 0 && s.unit === unit).map((s) => s.done);
  }
  total(n: number, unit?: string): void {
    this.state.total = n;
    if (unit !== undefined) this.state.unit = unit;
    this.snap('total');
    this.throttled.total(n, unit);
  }
  tick(n = 1): void {
    this.state.done += n;
    this.snap('tick', n);
    this.throttled.tick(n);
    if (n > 0) this.onTick?.(this.state.done);
  }
  set(done: number): void {
    this.state.done = done;
    this.snap('set');
    this.throttled.set(done);
  }
  message(text: string): void {
    this.state.message = text;
    this.snap('message');
    this.throttled.message(text);
  }
  finish(): void {
    this.throttled.flush();
  }
  /** The phases declared, i.e. the states at each total() call (the engine emits those at once). */
  phases(): Array<{ unit?: string; total?: number; done: number; message?: string }> {
    return this.snaps.filter((s) => s.call === 'total').map(({ unit, total, done, message }) => ({ unit, total, done, message }));
  }
}

const EPOCH = /^epoch \d+\/\d+/;

/** What a user may see at any emitted moment: the count within the total, the message of the unit's phase. */
function assertConsistent(states: ProgressUpdate[], what: string): void {
  for (const [i, s] of states.entries()) {
    const where = `${what} #${i}: ${JSON.stringify(s)}`;
    if (s.total !== undefined) assert.ok(s.done <= s.total, `count beyond the total at ${where}`);
    if (s.unit === 'batch') assert.match(s.message ?? '', EPOCH, `batch bar without an epoch message at ${where}`);
    if (s.unit === 'img') assert.doesNotMatch(s.message ?? '', EPOCH, `image count under an epoch message at ${where}`);
  }
}

const made: string[] = [];
const tmp = (prefix: string): string => {
  const d = tmpDir(prefix);
  made.push(d);
  return d;
};
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

let data = '';
let init = '';
// 36 train + 12 val images (split fraction 0.25 of 8 per class × 6 classes); batch 6 → 6 batches per epoch.
const TRAIN = 36;
const VAL = 12;
const BATCHES = TRAIN / 6;

before(async () => {
  setBackendLogger(() => undefined);
  await initTestBackend();
  data = await syntheticIndex(join(tmp('progress-data'), 'idx'), 8, 32);
  init = await fakeInit(join(tmp('progress-init'), 'm'), 'resnet-mini', 6, 32);
});

test('frozen mode without augmentation: an image phase for feature extraction, then one batch bar per epoch', async () => {
  const rec = new Recorder();
  const ctx = stageCtx(
    {
      arch: 'resnet-mini',
      head: 'ca-stream',
      mode: 'frozen',
      epochs: 2,
      batch_size: 6,
      input_size: 32,
      resize: 32,
      augment: false,
      optimizer: 'adamw',
      lr: 0.01,
      workers: 0,
      log_every: 0,
    },
    { data, init },
    tmp('progress-frozen'),
  );
  ctx.progress = rec;
  await trainStage.run(ctx as never);
  rec.finish();

  const phases = rec.phases();
  assert.equal(phases.length, 3, JSON.stringify(phases));
  assert.deepEqual({ ...phases[0], message: undefined }, { unit: 'img', total: TRAIN + VAL, done: 0, message: undefined });
  assert.match(phases[0].message!, /extracting/);
  assert.deepEqual(phases.slice(1), [
    { unit: 'batch', total: BATCHES, done: 0, message: 'epoch 1/2' },
    { unit: 'batch', total: BATCHES, done: 0, message: 'epoch 2/2' },
  ]);

  // The extraction counted every image before the first epoch began.
  const firstEpoch = rec.snaps.findIndex((s) => s.call === 'total' && s.unit === 'batch');
  const imgTicks = rec.ticks('img', rec.snaps.slice(0, firstEpoch));
  assert.ok(
    imgTicks.every((d, i) => i === 0 || d > imgTicks[i - 1]),
    `image count rises: ${imgTicks}`,
  );
  assert.equal(imgTicks.at(-1), TRAIN + VAL);
  assert.deepEqual(rec.ticks('img', rec.snaps.slice(firstEpoch)), [], 'no image ticks during the epochs');
  // Each epoch ticks its batches one by one up to the total.
  assert.deepEqual(rec.ticks('batch'), [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);

  assertConsistent(
    rec.snaps.filter((s) => s.call === 'total'),
    'declared phase',
  );
  assert.ok(
    rec.snaps.every((s) => s.total === undefined || s.done <= s.total),
    'no snapshot counts past its total',
  );
  assertConsistent(rec.emitted, 'emitted update');
  assert.equal(rec.emitted.at(-1)!.done, BATCHES);
});

test('a resumed epoch starts its batch bar at the checkpointed batch', async () => {
  const root = tmp('progress-resume');
  const params = {
    arch: 'resnet-mini',
    head: 'gap',
    mode: 'scratch',
    epochs: 2,
    batch_size: 6,
    input_size: 32,
    resize: 32,
    augment: false,
    optimizer: 'sgd',
    lr: 0.01,
    checkpoint_every_iters: 1,
    workers: 0,
    log_every: 0,
  };
  const stopAt = BATCHES + 2; // two batches into the second epoch
  const ac = new AbortController();
  const first = new Recorder();
  first.onTick = () => {
    if (first.ticks('batch').length === stopAt) ac.abort(new Error('stop'));
  };
  const c1 = stageCtx(params, { data }, root, ac.signal);
  c1.progress = first;
  await assert.rejects(trainStage.run(c1 as never), /stop/);
  assert.deepEqual(
    first.phases().map((p) => p.unit),
    ['batch', 'batch'],
    'scratch mode has no extraction phase',
  );

  const second = new Recorder();
  const c2 = stageCtx(params, { data }, root);
  c2.progress = second;
  await trainStage.run(c2 as never);
  second.finish();
  assert.deepEqual(second.phases(), [{ unit: 'batch', total: BATCHES, done: 2, message: 'epoch 2/2' }]);
  assertConsistent(second.emitted, 'emitted update');
  assert.equal(second.emitted.at(-1)!.done, BATCHES);
});

test('the features stage reports one image phase over its train and val images', async () => {
  const { featuresStage } = await import('../../stages/features/index.js');
  const rec = new Recorder();
  const ctx = stageCtx({ arch: 'resnet-mini', input_size: 32, resize: 32, workers: 0 }, { data, init }, tmp('progress-features'));
  ctx.progress = rec;
  await featuresStage.run(ctx as never);
  rec.finish();
  const phases = rec.phases();
  assert.equal(phases.length, 1, JSON.stringify(phases));
  assert.equal(phases[0].unit, 'img');
  assert.equal(phases[0].total, TRAIN + VAL);
  assert.match(phases[0].message!, /extracting/);
  assert.equal(rec.ticks('img').at(-1), TRAIN + VAL);
  assertConsistent(rec.emitted, 'emitted update');
  assert.deepEqual(
    rec.snaps.filter((s) => s.call === 'message').map((s) => s.message),
    ['extracting backbone features', 'extracting backbone features (train)', 'extracting backbone features (val)'],
  );
});
