// The rule behind `engine: auto` and its recorded calibration: what is chosen where, that a GPU
// engine wins over a CPU one, that a calibration runs once per key and is then only read, and that
// concurrent writers end up following one record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ruleFromTiming, ruleWithoutTiming, TFJS_MARGIN, type EngineFacts } from '../../ml/forward/rule.js';
import {
  calibrated,
  calibrationDir,
  calibrationFile,
  publishCalibration,
  readCalibration,
  tensorflowSettings,
  timeEngines,
  type CalibrationKey,
  type CalibrationRecord,
} from '../../ml/forward/calibration.js';
import type { ForwardSession } from '../../ml/forward/session.js';
import { tensorflowDevice } from '../../ml/backend/index.js';

const facts = (backend: string, tfjsGpu: boolean, cuda: boolean): EngineFacts => ({
  tfjs: { backend, device: tfjsGpu ? 'gpu' : 'cpu' },
  onnx: { provider: cuda ? 'cuda' : 'cpu' },
});

test('an explicit engine is taken as given, whatever the machine', () => {
  for (const f of [facts('wasm', false, false), facts('tensorflow', true, false), facts('tensorflow', false, true)]) {
    assert.deepEqual(ruleWithoutTiming('tfjs', f), { engine: 'tfjs', reason: 'engine: tfjs in the stage params' });
    assert.deepEqual(ruleWithoutTiming('onnx', f), { engine: 'onnx', reason: 'engine: onnx in the stage params' });
  }
});

test('auto: a GPU engine is preferred over a CPU engine, either way round, without timing', () => {
  const ortGpu = ruleWithoutTiming('auto', facts('tensorflow', false, true));
  assert.ok('engine' in ortGpu && ortGpu.engine === 'onnx', JSON.stringify(ortGpu));
  assert.match(ortGpu.reason, /GPU \(CUDA provider\)/);
  const tfGpu = ruleWithoutTiming('auto', facts('tensorflow', true, false));
  assert.ok('engine' in tfGpu && tfGpu.engine === 'tfjs', JSON.stringify(tfGpu));
  assert.match(tfGpu.reason, /tfjs \(tensorflow\) runs on the GPU/);
  // ORT on the GPU also beats tfjs on wasm
  const wasm = ruleWithoutTiming('auto', facts('wasm', false, true));
  assert.ok('engine' in wasm && wasm.engine === 'onnx');
});

test('auto: tfjs on wasm or cpu never competes with ONNX Runtime on the CPU; native TensorFlow asks for a calibration', () => {
  for (const b of ['wasm', 'cpu']) {
    const r = ruleWithoutTiming('auto', facts(b, false, false));
    assert.ok('engine' in r && r.engine === 'onnx', b);
    assert.match(r.reason, new RegExp(`tfjs runs on ${b}.*bench:forward`));
  }
  assert.ok('calibrate' in ruleWithoutTiming('auto', facts('tensorflow', false, false)));
  // both on a GPU: measured too
  const both = ruleWithoutTiming('auto', facts('tensorflow', true, true));
  assert.ok('calibrate' in both);
  assert.match(both.reason, /both on the GPU/);
});

test('calibration outcome: tfjs only at TFJS_MARGIN× or more, ONNX Runtime on a near tie', () => {
  assert.equal(ruleFromTiming({ onnx_img_s: 20, tfjs_img_s: 20 * TFJS_MARGIN }, 'ctx').engine, 'tfjs');
  assert.equal(ruleFromTiming({ onnx_img_s: 20, tfjs_img_s: 20 * TFJS_MARGIN * 0.99 }, 'ctx').engine, 'onnx');
  assert.equal(ruleFromTiming({ onnx_img_s: 20, tfjs_img_s: 10 }, 'ctx').engine, 'onnx');
  const r = ruleFromTiming({ onnx_img_s: 10, tfjs_img_s: 30 }, 'native TensorFlow and ONNX Runtime both on the CPU');
  assert.match(r.reason, /^native TensorFlow .*calibration: tfjs 30\.0 img\/s vs ONNX Runtime 10\.0 img\/s \(3\.00×/);
});

const key = (over: Partial<CalibrationKey> = {}): CalibrationKey => ({
  format: 'ca-pipe.engine-calibration/1',
  arch: 'resnet50',
  head: 'gap',
  heads: 1,
  input_size: 224,
  batch: 8,
  outputs: ['logits'],
  tfjs: { backend: 'tensorflow', device: 'cpu' },
  onnx: { provider: 'cpu' },
  machine: { cpu: 'test cpu', cores: 2 },
  ...over,
});

test('a calibration is measured once per key, then read back; another key measures again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'calib-'));
  let calls = 0;
  const measure = async () => {
    calls++;
    return { onnx_img_s: 10 + calls, tfjs_img_s: 30, forwards: 3 };
  };
  const a = await calibrated(key(), dir, measure);
  assert.equal(a.fresh, true);
  assert.equal(calls, 1);
  const b = await calibrated(key(), dir, measure);
  assert.equal(b.fresh, false);
  assert.equal(calls, 1, 'the second call read the record instead of timing');
  assert.equal(b.record.onnx_img_s, a.record.onnx_img_s);
  assert.equal(b.file, a.file);
  const c = await calibrated(key({ batch: 16 }), dir, measure);
  assert.equal(c.fresh, true);
  assert.equal(calls, 2);
  assert.notEqual(c.file, a.file);
  assert.equal(readdirSync(dir).filter((n) => n.endsWith('.json')).length, 2);
  assert.equal(readdirSync(dir).filter((n) => n.includes('.tmp-')).length, 0);
});

test('TensorFlow timed with other oneDNN or thread settings is another key: measured again', async () => {
  assert.deepEqual(tensorflowSettings({}), { onednn: null, intra_op_threads: null });
  assert.deepEqual(tensorflowSettings({ TF_ENABLE_ONEDNN_OPTS: '0', TF_NUM_INTRAOP_THREADS: '1' }), { onednn: '0', intra_op_threads: '1' });
  const dir = mkdtempSync(join(tmpdir(), 'calib-'));
  let calls = 0;
  const measure = async () => ({ onnx_img_s: 10, tfjs_img_s: 30 + ++calls, forwards: 3 });
  const on = key({ tensorflow: tensorflowSettings({ TF_ENABLE_ONEDNN_OPTS: '1' }) });
  const off = key({ tensorflow: tensorflowSettings({ TF_ENABLE_ONEDNN_OPTS: '0' }) });
  const oneThread = key({ tensorflow: tensorflowSettings({ TF_ENABLE_ONEDNN_OPTS: '1', TF_NUM_INTRAOP_THREADS: '1' }) });
  assert.equal((await calibrated(on, dir, measure)).fresh, true);
  assert.equal((await calibrated(on, dir, measure)).fresh, false);
  assert.equal((await calibrated(off, dir, measure)).fresh, true, 'oneDNN off');
  assert.equal((await calibrated(oneThread, dir, measure)).fresh, true, 'one intra-op thread');
  assert.equal(calls, 3);
  assert.equal(new Set([on, off, oneThread].map((k) => calibrationFile(dir, k))).size, 3);
});

test('a damaged or foreign record is not trusted: it is measured again and replaced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'calib-bad-'));
  const file = calibrationFile(dir, key());
  writeFileSync(file, '{ not json');
  let calls = 0;
  const r = await calibrated(key(), dir, async () => {
    calls++;
    return { onnx_img_s: 5, tfjs_img_s: 6, forwards: 1 };
  });
  assert.equal(calls, 1);
  assert.equal(r.fresh, true);
  assert.deepEqual(await readCalibration(file, key()), r.record);
  // a record of another machine under this name (hand-copied) is not read as ours
  assert.equal(await readCalibration(file, key({ machine: { cpu: 'other', cores: 64 } })), undefined);
});

test('two writers of one key: the first record published is the one both follow', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'calib-race-'));
  const file = calibrationFile(dir, key());
  const rec = (onnx: number): CalibrationRecord => ({
    key: key(),
    onnx_img_s: onnx,
    tfjs_img_s: 20,
    forwards: 3,
    measured_at: 'now',
    load: 0,
  });
  const first = await publishCalibration(file, rec(10));
  const second = await publishCalibration(file, rec(30));
  assert.equal(first.onnx_img_s, 10);
  assert.equal(second.onnx_img_s, 10, 'the later writer adopts the record on disk');
  assert.equal((JSON.parse(readFileSync(file, 'utf8')) as CalibrationRecord).onnx_img_s, 10);
});

test('timeEngines times both sessions at the batch size and reports images per second', async () => {
  const fake = (engine: 'onnx' | 'tfjs', ms: number, seen: number[]): ForwardSession => ({
    engine,
    outputs: ['logits'],
    async run(x, b) {
      seen.push(b);
      assert.equal(x.length, b * 3 * 8 * 8);
      const t0 = performance.now();
      while (performance.now() - t0 < ms) {
        /* busy: a stand-in for a forward pass */
      }
      return { logits: { dims: [b, 1], data: new Float32Array(b) } };
    },
    async runChunked() {
      throw new Error('not used');
    },
    async release() {},
  });
  const a: number[] = [];
  const b: number[] = [];
  const t = await timeEngines(fake('onnx', 40, a), fake('tfjs', 10, b), { batch: 4, size: 8, outputs: ['logits'], forwards: 3 });
  assert.deepEqual(a, [4, 4, 4, 4]); // one warm-up + three timed
  assert.deepEqual(b, [4, 4, 4, 4]);
  assert.equal(t.forwards, 3);
  assert.ok(t.tfjs_img_s > 2 * t.onnx_img_s, JSON.stringify(t));
  assert.ok(t.onnx_img_s > 50 && t.onnx_img_s <= 100, JSON.stringify(t)); // 4 images / ≥ 40 ms
});

test('the calibration directory: env override, else XDG cache, else ~/.cache', () => {
  assert.equal(calibrationDir({ CA_PIPE_CALIBRATION_DIR: '/x/y' }), '/x/y');
  assert.equal(calibrationDir({ XDG_CACHE_HOME: '/c' }), join('/c', 'ca-pipe', 'engine-calibration'));
  assert.match(calibrationDir({}), /\.cache\/ca-pipe\/engine-calibration$/);
});

test('the backend line says where TensorFlow runs', () => {
  assert.deepEqual(tensorflowDevice('@tensorflow/tfjs-node-gpu', true), { device: 'gpu', note: 'on the GPU' });
  const noGpu = tensorflowDevice('@tensorflow/tfjs-node-gpu', false);
  assert.equal(noGpu.device, 'cpu');
  assert.match(noGpu.note, /GPU build, but TensorFlow sees no GPU: it runs on the CPU/);
  assert.deepEqual(tensorflowDevice('@tensorflow/tfjs-node', false), { device: 'cpu', note: 'CPU build' });
});
