import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { forwardCommand } from '../../cli/forward.js';
import { setBackendLogger } from '../../ml/backend/index.js';
import { readSafetensors, serializeSafetensors, type TensorFile } from '../../ml/io/safetensors.js';
import { fixturesDir } from './fixtures.js';

const FIX = join(fixturesDir(), 'resnet-basic-1111');
const WEIGHTS = `${FIX}.weights.safetensors`;
const EXPECTED = `${FIX}.expected.safetensors`;
let dir: string;
let E: TensorFile;

before(async () => {
  setBackendLogger(() => {});
  process.env.CA_PIPE_BACKEND = 'wasm';
  dir = await mkdtemp(join(tmpdir(), 'fwd-'));
  E = await readSafetensors(EXPECTED);
});
after(() => rm(dir, { recursive: true, force: true }));

/** Run `ca-pipe forward …` in-process; returns stderr and the exit code it set. */
async function forward(args: string[]): Promise<{ stderr: string; code: number }> {
  const program = new Command('ca-pipe').exitOverride().addCommand(forwardCommand().exitOverride());
  let stderr = '';
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  const prevCode = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'ca-pipe', 'forward', ...args]);
  } finally {
    process.stderr.write = orig;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = prevCode;
  return { stderr, code };
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}

test('forward (tfjs) writes NCHW taps, attention maps, token and both logit sets matching the fixture', async () => {
  const out = join(dir, 'tfjs.safetensors');
  const r = await forward([
    '--arch',
    'resnet-basic-1111',
    '--head',
    'ca-stream',
    '--heads',
    '4',
    '--weights',
    WEIGHTS,
    '--input',
    EXPECTED,
    '--out',
    out,
    '--batch-size',
    '1',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const got = (await readSafetensors(out)).tensors;
  const pairs: Array<[string, string]> = [
    ...['stem', 'layer1', 'layer2', 'layer3', 'layer4'].flatMap((t): Array<[string, string]> => [
      [`tap.${t}`, `tap.${t}`],
      [`attn.${t}`, `heads4.attn.${t}`],
    ]),
    ['cls.final', 'heads4.cls.final'],
    ['logits', 'heads4.logits.forward'],
    ['logits.gap', 'logits.gap'],
  ];
  for (const [mine, ref] of pairs) {
    const a = got.get(mine)!;
    const b = E.tensors.get(ref)!;
    assert.deepEqual(a.shape, b.shape, mine);
    assert.ok(maxRel(a.data as Float32Array, b.data as Float32Array) <= 1e-4, mine);
  }
  const probs = got.get('probs')!.data as Float32Array;
  assert.ok(Math.abs(probs.slice(0, 10).reduce((s, v) => s + v, 0) - 1) < 1e-5);
});

test('forward --engine onnx (ml/onnx) matches the same fixture, or says clearly that it is unavailable', async () => {
  const out = join(dir, 'onnx.safetensors');
  const r = await forward([
    '--arch',
    'resnet-basic-1111',
    '--head',
    'ca-stream',
    '--heads',
    '4',
    '--weights',
    WEIGHTS,
    '--input',
    EXPECTED,
    '--out',
    out,
    '--engine',
    'onnx',
    '--cache-dir',
    join(dir, 'onnx-cache'),
  ]);
  if (r.code !== 0) {
    assert.match(r.stderr, /^ca-pipe forward: the onnx engine is not available/);
    return;
  }
  const got = (await readSafetensors(out)).tensors;
  for (const [mine, ref] of [
    ['tap.layer4', 'tap.layer4'],
    ['attn.stem', 'heads4.attn.stem'],
    ['logits', 'heads4.logits.ca'],
    ['logits.gap', 'logits.gap'],
  ]) {
    assert.ok(maxRel(got.get(mine)!.data as Float32Array, E.tensors.get(ref)!.data as Float32Array) <= 1e-4, mine);
  }
});

test('forward reports bad files as "ca-pipe forward: <file>: …" with exit code 1 and no stack', async () => {
  const w = await readFile(WEIGHTS);
  const trunc = join(dir, 'trunc.safetensors');
  await writeFile(trunc, w.subarray(0, w.length - 1000));
  const base = ['--arch', 'resnet-basic-1111', '--out', join(dir, 'x.safetensors')];
  const check = async (args: string[], re: RegExp) => {
    const r = await forward([...base, ...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  };
  await check(['--weights', trunc, '--input', EXPECTED], /^ca-pipe forward: .*trunc\.safetensors \[[\w.]+\]: truncated/);
  const parsed = await readSafetensors(WEIGHTS);
  const partial = join(dir, 'partial.safetensors');
  await writeFile(
    partial,
    serializeSafetensors(
      Object.fromEntries(
        [...parsed.tensors]
          .filter(([k]) => k !== 'l3.to_out.1.weight')
          .map(([k, v]) => [k, { shape: v.shape, data: v.data as Float32Array }]),
      ),
    ),
  );
  await check(
    ['--weights', partial, '--input', EXPECTED],
    /^ca-pipe forward: .*partial\.safetensors: .*missing keys: l3\.to_out\.1\.weight/,
  );
  await check(
    ['--weights', WEIGHTS, '--input', EXPECTED, '--input-key', 'nope'],
    /^ca-pipe forward: .*expected\.safetensors: no tensor "nope"/,
  );
  await check(
    ['--weights', WEIGHTS, '--input', EXPECTED, '--input-key', 'logits.gap'],
    /^ca-pipe forward: .*expected\.safetensors \[logits\.gap\]: expected an NCHW batch/,
  );
  await check(
    ['--weights', join(dir, 'absent.safetensors'), '--input', EXPECTED],
    /^ca-pipe forward: .*absent\.safetensors: cannot read \(ENOENT\)/,
  );
  await check(['--weights', WEIGHTS, '--input', EXPECTED, '--heads', '3'], /^ca-pipe forward: heads=3 must divide/);
});

test('forward --help shows an example', async () => {
  const cmd = forwardCommand();
  let help = '';
  cmd.configureOutput({ writeOut: (s) => (help += s) });
  cmd.outputHelp();
  assert.match(help, /Example:\n\s+\$ ca-pipe forward --arch resnet50 --head ca-stream --heads 8/);
  assert.match(help, /--engine <engine>/);
});

for (const name of ['convnext-mini', 'efficientnet-mini']) {
  for (const engine of ['tfjs', 'onnx']) {
    test(`forward --arch ${name} --engine ${engine} writes the fixture's key names and values`, async () => {
      const fix = join(fixturesDir(), name);
      const expected = (await readSafetensors(`${fix}.expected.safetensors`)).tensors;
      const out = join(dir, `${name}-${engine}.safetensors`);
      const r = await forward([
        '--arch',
        name,
        '--head',
        'ca-stream',
        '--weights',
        `${fix}.weights.safetensors`,
        '--input',
        `${fix}.expected.safetensors`,
        '--out',
        out,
        '--engine',
        engine,
        '--cache-dir',
        join(dir, 'onnx-cache'),
      ]);
      assert.equal(r.code, 0, r.stderr);
      const got = (await readSafetensors(out)).tensors;
      for (const [key, ref] of expected) {
        if (key === 'input') continue;
        const mine = got.get(key === 'logits.ca' ? 'logits' : key);
        assert.ok(mine, `${engine}: no ${key} in the output (has ${[...got.keys()].join(', ')})`);
        assert.deepEqual(mine.shape, ref.shape, key);
        assert.ok(maxRel(mine.data as Float32Array, ref.data as Float32Array) <= 1e-4, `${engine} ${key}`);
      }
    });
  }
}
