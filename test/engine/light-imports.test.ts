// The CLI loads stages/index on every invocation (a fully cached rerun included), so stage
// modules must load tfjs, onnxruntime and sharp lazily inside run(), never at top level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

test('importing the stage registry loads no tfjs / onnxruntime / sharp', async () => {
  const req = createRequire(import.meta.url);
  const heavy = (): string[] =>
    Object.keys(req.cache).filter((p) => /node_modules[\\/](@tensorflow|onnxruntime-node|onnxruntime-common|sharp)[\\/]/.test(p));
  assert.deepEqual(heavy(), [], 'nothing heavy before the import');
  const { STAGE_KINDS } = await import('../../stages/index.js');
  assert.ok(STAGE_KINDS.some((k) => k.kind === 'command'));
  const loaded = heavy();
  assert.deepEqual(loaded.slice(0, 3), [], `stages/index.ts pulled in heavy modules at import time (first: ${loaded[0]})`);
});

test('a second start-up with an unchanged experiment loads neither yaml nor ajv (tool cache)', async (t) => {
  const { tempDir, writeExp } = await import('./helpers.js');
  const { execFile } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const dir = await tempDir(t);
  const file = await writeExp(
    dir,
    'e.yaml',
    `name: probe\nstages:\n  a: { kind: command, params: { cmd: ['true'] } }\n  b: { kind: command, needs: [a], params: { cmd: ['true'] } }\n`,
  );
  const fromSource = import.meta.url.endsWith('.ts');
  const probe = fileURLToPath(new URL(`./load-probe.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  const args = [...(fromSource ? ['--import', import.meta.resolve('tsx')] : []), probe, 'probe', file];
  const start = () =>
    new Promise<{ instances: number; loaded: string[] }>((res, rej) =>
      execFile(process.execPath, args, { env: { ...process.env, CA_PIPE_CACHE_DIR: `${dir}/cache` } }, (err, out, errOut) =>
        err ? rej(new Error(errOut || err.message)) : res(JSON.parse(out)),
      ),
    );
  const cold = await start();
  assert.equal(cold.instances, 2);
  assert.ok(
    cold.loaded.some((p) => /[\\/]yaml[\\/]/.test(p)) && cold.loaded.some((p) => /[\\/]ajv[\\/]dist[\\/]core/.test(p)),
    'the first start parses and compiles',
  );
  const warm = await start();
  assert.equal(warm.instances, 2);
  assert.deepEqual(
    warm.loaded.filter((p) => !/ajv[\\/]dist[\\/]runtime[\\/]/.test(p)),
    [],
    'only ajv runtime helpers of the cached validators',
  );
  // Damaged cache entries are rebuilt, never trusted.
  const { readdir, writeFile } = await import('node:fs/promises');
  for (const sub of ['validators', 'yaml'])
    for (const f of await readdir(`${dir}/cache/${sub}`)) await writeFile(`${dir}/cache/${sub}/${f}`, '{ not code');
  const damaged = await start();
  assert.equal(damaged.instances, 2);
  assert.ok(
    damaged.loaded.some((p) => /[\\/]yaml[\\/]/.test(p)),
    'parsed again',
  );
});
