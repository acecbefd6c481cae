// Early cutoff needs the train stage to reproduce its outputs byte for byte: two runs of the same
// configuration (a scratch pretraining, then frozen CA-Stream training on it), each in its own
// output and scratch directories, must leave identical output trees. Timings belong to the
// provenance (run.json), not to the outputs; the TensorBoard file's name and wall times are
// functions of the training steps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setBackendLogger } from '../../ml/backend/index.js';
import { initTestBackend } from '../support/backend.js';
import { readJsonl } from '../../ml/train/jsonl.js';
import { OUTPUT_TB_FILE } from '../../ml/train/loop.js';
import { readEventFile } from '../../ml/train/tensorboard.js';
import { trainStage } from '../../stages/train/index.js';
import { sha256File, stageCtx, syntheticIndex, tmp } from './train-helpers.js';

const SIZE = 24;
const PRETRAIN = {
  arch: 'resnet-mini',
  head: 'gap',
  mode: 'scratch',
  epochs: 2,
  batch_size: 6,
  input_size: SIZE,
  resize: SIZE,
  augment: true,
  crop_scale: [0.5, 1],
  optimizer: 'adamw',
  lr: 0.003,
  schedule: 'cosine',
  schedule_per: 'iter',
  checkpoint_every_iters: 3,
  workers: 0,
  log_every: 1,
};
const CA = {
  arch: 'resnet-mini',
  head: 'ca-stream',
  mode: 'frozen',
  epochs: 2,
  batch_size: 6,
  input_size: SIZE,
  resize: SIZE,
  augment: false,
  optimizer: 'adamw',
  lr: 0.01,
  dropout: 0.1,
  schedule: 'cosine',
  schedule_per: 'iter',
  workers: 0,
  log_every: 1,
};

let data = '';
const roots: string[] = [];
before(async () => {
  setBackendLogger(() => undefined);
  await initTestBackend();
  roots.push(tmp('det-data'));
  data = await syntheticIndex(join(roots[0]!, 'idx'), 6, SIZE);
});
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** Relative path → sha256 of every file under `dir`. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const file = join(e.parentPath, e.name);
    out[relative(dir, file)] = sha256File(file);
  }
  return out;
}

async function chain(name: string) {
  const root = tmp(`det-${name}`);
  roots.push(root);
  const pre = stageCtx({ ...PRETRAIN }, { data }, join(root, 'pretrain'));
  await trainStage.run(pre as never);
  const ca = stageCtx({ ...CA }, { data, init: pre.outDir }, join(root, 'ca'));
  await trainStage.run(ca as never);
  return { pre, ca };
}

test('two runs of scratch + frozen CA training leave byte-identical output trees; timings go to provenance', async () => {
  const a = await chain('a');
  const b = await chain('b');
  for (const stage of ['pre', 'ca'] as const) {
    const ta = tree(a[stage].outDir);
    const tb = tree(b[stage].outDir);
    for (const f of ['model.json', 'final.safetensors', 'best.safetensors', 'metrics.jsonl', 'summary.json', join('tb', OUTPUT_TB_FILE)]) {
      assert.ok(f in ta, `${stage}: ${f} is an output (got ${Object.keys(ta).join(', ')})`);
    }
    assert.deepEqual(tb, ta, `${stage}: output trees differ`);

    // What moved: no clock reading in the metrics or the summary, all of it in the provenance.
    const out = a[stage].outDir;
    const records = readJsonl(join(out, 'metrics.jsonl'));
    for (const r of records)
      assert.deepEqual(
        Object.keys(r).filter((k) => ['img_s', 'time'].includes(k)),
        [],
        `metrics record ${JSON.stringify(r)}`,
      );
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.equal(summary.train_images_per_s, undefined);
    assert.equal(summary.resumed_from_step, undefined);
    const prov = a[stage].provenance.train as Record<string, unknown>;
    assert.ok(typeof prov.train_images_per_s === 'number' && prov.train_images_per_s > 0, `provenance.train ${JSON.stringify(prov)}`);
    assert.deepEqual(
      (prov.epochs_images_per_s as Array<{ epoch: number }>).map((e) => e.epoch),
      [0, 1],
    );
    assert.equal(prov.resumed_from_step, null);
    assert.ok(
      a[stage].logs.some((l) => /epoch 2\/2: .* img\/s$/.test(l)),
      `the stage log shows throughput: ${a[stage].logs.join(' | ')}`,
    );

    // TensorBoard wall_time = optimizer steps done when the scalar was logged (the metrics' `step`).
    const { events, scalars } = readEventFile(join(out, 'tb', OUTPUT_TB_FILE));
    assert.equal(events[0].wallTime, 0);
    const iters = records.filter((r) => r.type === 'iter');
    const epochs = records.filter((r) => r.type === 'epoch');
    const loss = scalars.filter((s) => s.tag === 'train/iter_loss');
    assert.equal(loss.length, iters.length);
    for (const s of loss) assert.equal(s.wallTime, s.step);
    const val = scalars.filter((s) => s.tag === 'epoch/val_loss');
    assert.deepEqual(
      val.map((s) => [s.step, s.wallTime]),
      epochs.map((r) => [Number(r.epoch) + 1, r.step]),
    );
  }
});
