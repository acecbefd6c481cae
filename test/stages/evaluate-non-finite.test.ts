// Finite weights can still overflow into NaN scores; the evaluate stage must then report the
// images as wrong and count them, not print a perfect top-1 (issue 12, item 7).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { serializeSafetensors } from '../../ml/io/safetensors.js';
import { runCli } from '../bad-inputs/run-cli.js';
import { put } from '../bad-inputs/scratch-files.js';
import { modelTensors } from '../bad-inputs/weights-files.js';

const WRAP = `
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const out = process.argv[2];
copyFileSync('w.safetensors', join(out, 'final.safetensors'));
writeFileSync(join(out, 'model.json'), JSON.stringify({ format: 'ca-pipe.model/1', arch: 'resnet-mini', head: 'gap', heads: 1, num_classes: 2,
  input_size: 32, resize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], classes: ['circle', 'square'], weights: 'final.safetensors' }));
`;

test('evaluate: NaN scores from overflowing weights count as wrong and are reported', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ca-pipe-eval-nan-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const tensors = modelTensors();
  // Every logit overflows to +Inf, and softmax of +Inf against +Inf is NaN.
  (tensors['fc.weight']!.data as Float32Array).fill(3e38);
  (tensors['fc.bias']!.data as Float32Array).fill(3e38);
  await writeFile(join(dir, 'w.safetensors'), serializeSafetensors(tensors));
  await put(dir, 'wrap.mjs', WRAP);
  await put(
    dir,
    'exp.yaml',
    `
stages:
  data:
    kind: index
    params: { source: synthetic, synthetic: { classes: 2, per_class: 4, size: 32 }, split: { fraction: 0.5 } }
  weights:
    kind: command
    params: { cmd: [node, wrap.mjs, "{out}"], deps: [w.safetensors, wrap.mjs], outs: [model.json, final.safetensors] }
  saliency:
    kind: saliency
    needs: { model: weights, data: data }
    params: { methods: [random] }
  evaluate:
    kind: evaluate
    needs: { model: weights, data: data, saliency: saliency }
    params: { bootstrap: { samples: 10 } }
`,
  );
  const r = await runCli(['run', 'exp.yaml', '--runs', 'runs', '--quiet'], dir);
  assert.equal(r.exitCode, 0, r.output);
  const summary = JSON.parse(await readFile(join(dir, 'runs/exp/latest/outputs/evaluate/evaluation.json'), 'utf8'));
  assert.equal(summary.accuracy.n, 4);
  assert.equal(summary.accuracy.top1, 0, 'a NaN score was counted as a correct prediction');
  assert.equal(summary.accuracy.top5, 0);
  assert.equal(summary.accuracy.non_finite, 4);
  const log = await readFile(join(dir, 'runs/exp/latest/logs/evaluate.log'), 'utf8');
  assert.match(log, /non-finite scores \(NaN or ±Inf\) for 4 of 4 images/);
});
