// `ca-pipe setup tensorflow` against a scratch project that borrows this checkout's node_modules
// (links), with its own copy of the binding package so that wiping it cannot touch the checkout.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCacheDir, pinnedBindingVersion, DEFAULT_TF_WHEEL_VERSION } from '../../cli/setup/tensorflow.js';
import { checkFreeDisk } from '../../cli/setup/tools.js';
import { tensorflowAvailable } from '../support/backend.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'ca-pipe.js');
const PKG = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-node');

let skip: string | undefined;
before(async () => {
  const a = await tensorflowAvailable();
  if (!a.ok) skip = a.reason;
});

/** A project whose node_modules links to the checkout's, except a real copy of @tensorflow/tfjs-node without deps/ and lib/. */
async function scratchProject(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ca-pipe-setup-'));
  await writeFile(join(dir, 'package.json'), await readFile(join(ROOT, 'package.json')));
  const nm = join(dir, 'node_modules');
  await mkdir(join(nm, '@tensorflow'), { recursive: true });
  for (const e of await readdir(join(ROOT, 'node_modules'))) {
    if (e !== '@tensorflow' && e !== '.cache') await symlink(join(ROOT, 'node_modules', e), join(nm, e));
  }
  for (const e of await readdir(join(ROOT, 'node_modules', '@tensorflow'))) {
    if (e !== 'tfjs-node') await symlink(join(ROOT, 'node_modules', '@tensorflow', e), join(nm, '@tensorflow', e));
  }
  await cp(PKG, join(nm, '@tensorflow', 'tfjs-node'), { recursive: true, filter: (src) => !/[/\\](deps|lib|build)$/.test(src) });
  return dir;
}

function setup(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'setup', 'tensorflow', ...args],
      { env: { ...process.env, ...env }, timeout: 300_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
      },
    );
  });
}

test('setup tensorflow: nothing to do when the binding loads', async (t) => {
  if (skip) return t.skip(skip);
  const r = await setup(['--root', ROOT]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /already loads: nothing to do/);
});

test('setup tensorflow after node_modules lost the build (as after npm ci): restored from the cache in seconds, and it loads', async (t) => {
  if (skip) return t.skip(skip);
  const cache = buildCacheDir('@tensorflow/tfjs-node', await pinnedBindingVersion(ROOT), DEFAULT_TF_WHEEL_VERSION);
  assert.ok(existsSync(join(cache, 'deps', 'lib')), `no cached build in ${cache}: the setup command keeps one (CI runs it first)`);
  const dir = await scratchProject();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const started = Date.now();
  const r = await setup(['--root', dir]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /does not load/);
  assert.match(r.out, /restoring the build cached in/);
  assert.match(r.out, /loads \(restored\)/);
  assert.ok(Date.now() - started < 60_000, `restore took ${Date.now() - started} ms`);
  assert.ok(
    existsSync(
      join(
        dir,
        'node_modules',
        '@tensorflow',
        'tfjs-node',
        'lib',
        `napi-v${Math.min(8, Number(process.versions.napi))}`,
        'tfjs_binding.node',
      ),
    ),
  );
  const again = await setup(['--root', dir]);
  assert.match(again.out, /nothing to do/, 'a second run changes nothing');
});

test('setup tensorflow --from-wheel names every missing build tool before downloading anything', async (t) => {
  if (skip) return t.skip(skip);
  const dir = await scratchProject();
  t.after(() => rm(dir, { recursive: true, force: true }));
  // A PATH with node and npm but no compiler, make or python3.
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await symlink(process.execPath, join(bin, 'node'));
  const r = await setup(['--root', dir, '--from-wheel', '--force'], { PATH: bin, CA_PIPE_CACHE_DIR: join(dir, 'no-cache') });
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /cannot build the TensorFlow binding here; missing:/);
  assert.match(r.out, /python3 with pip/);
  assert.match(r.out, /a C\+\+ compiler \(g\+\+\)/);
  assert.match(r.out, /make/);
  assert.doesNotMatch(r.out, /pip download/);
});

test('the disk check names the directory, what is free and what is needed', async () => {
  await assert.rejects(checkFreeDisk(tmpdir(), 1e18, 'the test'), (e: Error) => {
    assert.match(
      e.message,
      new RegExp(`not enough disk in ${tmpdir().replace(/[/\\]/g, '.')}: [0-9.]+ GB free, 1000000000.0 GB needed for the test`),
    );
    return true;
  });
});
