// Structure of the exported graph: BatchNorm folded away, Conv→Relu pairs left for ORT to fuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { getArch } from '../../ml/models/arch.js';
import { exportModel } from '../../ml/onnx/export.js';
import { decodeModel, type ModelMsg } from '../../ml/onnx/proto.js';
import { expectedWeights, type WeightMap } from '../../ml/onnx/weights.js';

const arch = getArch('resnet-mini'); // BasicBlocks, one per stage

function weights(): WeightMap {
  const out: WeightMap = new Map();
  for (const [k, shape] of expectedWeights(arch, 'ca-stream', 3)) {
    const n = shape.reduce((a, b) => a * b, 1);
    out.set(k, { shape, data: new Float32Array(n).fill(k.endsWith('running_var') ? 1 : 0.01) });
  }
  return out;
}

function opCounts(m: ModelMsg): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of m.graph.node) {
    const k = `${(n as { domain?: string }).domain ? `${(n as { domain?: string }).domain}:` : ''}${n.opType}`;
    c[k] = (c[k] ?? 0) + 1;
  }
  return c;
}

test('exported model: opset 17, dynamic batch, no BatchNormalization, one Conv per torchvision conv', () => {
  const m = decodeModel(exportModel({ arch, head: 'gap', weights: weights() }));
  assert.deepEqual(
    m.opsetImport.map((o) => [o.domain ?? '', o.version]),
    [['', 17]],
  );
  assert.equal(m.irVersion, 8);
  const dims = (m.graph.input[0].type.tensorType.shape.dim as Array<{ dimValue?: number; dimParam?: string }>).map(
    (d) => d.dimValue ?? d.dimParam,
  );
  assert.deepEqual(dims, ['batch', 3, 'height', 'width']);
  const c = opCounts(m);
  assert.equal(c.BatchNormalization, undefined);
  // conv1 + 4 blocks × 2 convs + 3 downsamples (layer2..4 change width and stride).
  assert.equal(c.Conv, 1 + 8 + 3);
  // Relus: stem, one inside each block, one after each residual Add.
  assert.equal(c.Relu, 1 + 4 + 4);
  assert.equal(c.Add, 4);
});

test('backbone-only graph has no classifier or CA nodes; a tap subset prunes the layers after it', () => {
  const all = opCounts(decodeModel(exportModel({ arch, head: 'none', weights: weights() })));
  assert.equal(all.Gemm, undefined);
  assert.equal(all.MatMul, undefined);
  const stemOnly = decodeModel(exportModel({ arch, head: 'ca-stream', weights: weights(), outputs: ['tap.stem'] }));
  assert.deepEqual(opCounts(stemOnly), { Conv: 1, Relu: 1, MaxPool: 1 });
  assert.deepEqual(stemOnly.graph.initializer.map((t) => t.name).sort(), ['conv1.weight:bias', 'conv1.weight:folded']);
});

test('ONNX Runtime fuses every Conv→Relu of the export (extended optimisation)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'onnx-graph-'));
  try {
    const path = join(dir, 'opt.onnx');
    const s = await ort.InferenceSession.create(exportModel({ arch, head: 'gap', weights: weights() }), {
      graphOptimizationLevel: 'extended',
      optimizedModelFilePath: path,
    });
    await s.release();
    const c = opCounts(decodeModel(await readFile(path)));
    // The stem's and each block's inner Conv→Relu become FusedConv; only the post-Add Relus stay.
    assert.equal(c['com.microsoft:FusedConv'], 1 + 4);
    assert.equal(c.Relu, 4);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('unknown outputs and heads that do not divide the channels are rejected', () => {
  assert.throws(
    () => exportModel({ arch, head: 'gap', weights: weights(), outputs: ['attn.layer4'] }),
    /"attn\.layer4" is not available with head gap/,
  );
  assert.throws(
    () => exportModel({ arch, head: 'ca-stream', heads: 3, weights: weights() }),
    /heads=3 does not divide the 16 channels of tap stem/,
  );
});
