// ONNX Runtime's execution provider choice (untested on a GPU: this machine has none, so these
// tests drive the decision with fake probes, device folders and library folders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CUDA_PROVIDER_LIBRARY,
  decideProvider,
  executionProviders,
  ortBinaryDir,
  ortProvider,
  overrideProviderChoice,
  probeCuda,
  providerSetting,
  setProviderLogger,
  visibleGpu,
} from '../../ml/onnx/provider.js';
import { createSession } from '../../ml/onnx/runtime.js';
import { readSafetensors } from '../../ml/io/safetensors.js';
import { getArch } from '../../ml/models/arch.js';
import { fixturesDir } from '../ml/fixtures.js';

const LIB = '/ort/bin/libonnxruntime_providers_cuda.so';

test('auto: cuda only with both the provider library and a visible GPU', () => {
  assert.equal(decideProvider('auto', { library: LIB, gpu: '/dev/nvidia0' }).provider, 'cuda');
  const noLib = decideProvider('auto', { library: null, gpu: '/dev/nvidia0' });
  assert.equal(noLib.provider, 'cpu');
  assert.match(noLib.reason, /not installed.*ONNXRUNTIME_NODE_INSTALL=skip/);
  const noGpu = decideProvider('auto', { library: LIB, gpu: null });
  assert.equal(noGpu.provider, 'cpu');
  assert.match(noGpu.reason, /no GPU is visible/);
});

test('explicit settings win; an explicit cuda says what the probe missed', () => {
  assert.equal(decideProvider('cpu', { library: LIB, gpu: '/dev/nvidia0' }).provider, 'cpu');
  const c = decideProvider('cuda', { library: null, gpu: null });
  assert.equal(c.provider, 'cuda');
  assert.match(c.reason, /warning: .*not found.*no GPU visible/);
  assert.equal(decideProvider('cuda', { library: LIB, gpu: 'x' }).reason, 'CA_PIPE_ORT_PROVIDER=cuda');
});

test('CA_PIPE_ORT_PROVIDER: unset is auto, a bad value names the variable', () => {
  assert.equal(providerSetting({}), 'auto');
  assert.equal(providerSetting({ CA_PIPE_ORT_PROVIDER: ' cuda ' }), 'cuda');
  assert.throws(() => providerSetting({ CA_PIPE_ORT_PROVIDER: 'gpu' }), /CA_PIPE_ORT_PROVIDER="gpu" is not one of auto, cpu, cuda/);
});

test('execution providers: cuda keeps the cpu provider behind it for the nodes CUDA lacks', () => {
  assert.deepEqual(executionProviders('cuda'), ['cuda', 'cpu']);
  assert.deepEqual(executionProviders('cpu'), ['cpu']);
});

test('GPU visibility: a /dev/nvidiaN node counts, CUDA_VISIBLE_DEVICES can hide every GPU', () => {
  const dev = mkdtempSync(join(tmpdir(), 'dev-'));
  writeFileSync(join(dev, 'nvidiactl'), '');
  const none = visibleGpu({ PATH: '' }, dev); // no node, and no nvidia-smi on an empty PATH
  assert.equal(none, null);
  writeFileSync(join(dev, 'nvidia0'), '');
  assert.equal(visibleGpu({}, dev), join(dev, 'nvidia0'));
  assert.equal(visibleGpu({ CUDA_VISIBLE_DEVICES: '' }, dev), null);
  assert.equal(visibleGpu({ CUDA_VISIBLE_DEVICES: '-1' }, dev), null);
  assert.equal(visibleGpu({ CUDA_VISIBLE_DEVICES: '0' }, dev), join(dev, 'nvidia0'));
});

test("the probe looks for the provider library in onnxruntime-node's native folder", () => {
  const bin = mkdtempSync(join(tmpdir(), 'ortbin-'));
  assert.equal(probeCuda(bin).library, null);
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, CUDA_PROVIDER_LIBRARY), '');
  assert.equal(probeCuda(bin).library, join(bin, CUDA_PROVIDER_LIBRARY));
  // the real package: the folder named is where its native binding lives
  const real = ortBinaryDir();
  assert.ok(real && real.endsWith(join('bin', 'napi-v6', process.platform, process.arch)), String(real));
  assert.ok(existsSync(join(real, 'onnxruntime_binding.node')), real);
});

// The real ONNX Runtime on this machine has no CUDA provider library, so a CUDA session fails to
// be created: that drives the two failure paths for real.
const WEIGHTS = join(fixturesDir(), 'resnet-basic-1111.weights.safetensors');

async function fixtureSession() {
  const weights = (await readSafetensors(WEIGHTS)).tensors as Map<string, { shape: number[]; data: Float32Array }>;
  return createSession({
    arch: getArch('resnet-basic-1111'),
    head: 'gap',
    weights,
    weightsFile: WEIGHTS,
    cacheDir: mkdtempSync(join(tmpdir(), 'ort-prov-')),
  });
}

test(
  'auto chose cuda but the CUDA session fails: falls back to cpu, says so, and the session works',
  { skip: probeCuda().library ? 'this machine has the CUDA provider library' : false },
  async () => {
    const lines: string[] = [];
    setProviderLogger((l) => lines.push(l));
    overrideProviderChoice(decideProvider('auto', { library: LIB, gpu: '/dev/nvidia0' }));
    try {
      const s = await fixtureSession();
      assert.equal(s.provider, 'cpu');
      const r = await s.run(new Float32Array(3 * 32 * 32), 1, 32, 32);
      assert.equal(r.logits.dims[0], 1);
      await s.release();
      assert.equal(ortProvider().provider, 'cpu', 'later sessions do not retry CUDA');
      assert.match(lines.join('\n'), /onnxruntime provider: cpu \(.*creating a CUDA session failed .*fell back to cpu\)/);
    } finally {
      overrideProviderChoice(undefined);
    }
  },
);

test(
  'an explicit cuda that cannot be created is an error naming the setting',
  { skip: probeCuda().library ? 'this machine has the CUDA provider library' : false },
  async () => {
    setProviderLogger(() => {});
    overrideProviderChoice(decideProvider('cuda', { library: null, gpu: null }));
    try {
      await assert.rejects(fixtureSession(), /CA_PIPE_ORT_PROVIDER=cuda: ONNX Runtime could not create a CUDA session/);
    } finally {
      overrideProviderChoice(undefined);
    }
  },
);
