// `ca-pipe setup tensorflow`: make the native TensorFlow binding (@tensorflow/tfjs-node, or -gpu)
// load in this project. Order: nothing to do when it already loads → restore a build cached by an
// earlier setup (npm ci wipes node_modules, the cache survives) → the package's own install (it
// downloads libtensorflow) → build the addon from the package's sources against the TensorFlow C
// library inside a pip wheel. Every step says what it does; every failure says what is missing.
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from '../common.js';
import { checkBuildTools, checkFreeDisk, runTool, type Step } from './tools.js';
import { buildAddon, layOutWheelLibrary } from './wheel.js';

export interface TensorflowSetupOptions {
  /** Project root (where node_modules is). */
  root: string;
  gpu: boolean;
  /** Skip the package's own download and build from a wheel at once. */
  fromWheel: boolean;
  /** A wheel already on disk (else pip downloads `tensorflow-cpu==<version>` / `tensorflow==<version>`). */
  wheel?: string;
  /** TensorFlow wheel version to build against. */
  tfVersion: string;
  /** Rebuild even when a cached build exists. */
  force: boolean;
  log: (line: string) => void;
}

/** TensorFlow's own wheel whose C library exports every TF_/TFE_ function the 4.22 binding calls. */
export const DEFAULT_TF_WHEEL_VERSION = '2.21.0';

export function bindingPackage(gpu: boolean): string {
  return gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
}

/** The binding version this project pins (optionalDependencies, or the documented GPU twin). */
export async function pinnedBindingVersion(root: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    optionalDependencies?: Record<string, string>;
    dependencies?: Record<string, string>;
  };
  const v = pkg.optionalDependencies?.['@tensorflow/tfjs-node'] ?? pkg.dependencies?.['@tensorflow/tfjs-node'];
  if (!v) throw new CliError('package.json pins no @tensorflow/tfjs-node version (optionalDependencies)', 2);
  return v.replace(/^[\^~=]/, '');
}

/** Where finished builds are kept, outside node_modules so that `npm ci` does not wipe them. */
export function buildCacheDir(pkgName: string, bindingVersion: string, tfVersion: string): string {
  const base = process.env.CA_PIPE_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ca-pipe');
  return join(base, 'tensorflow', `${pkgName.replace('@tensorflow/', '')}-${bindingVersion}-tf${tfVersion}-napi${napiBuildVersion()}`);
}

/** The binding ships N-API builds 3–8 and node-pre-gyp picks the highest the running Node supports. */
export function napiBuildVersion(): number {
  return Math.min(8, Number(process.versions.napi));
}

/** Loads the binding in a child process (a broken native library must not take this one down). */
export async function probeBinding(root: string, pkgName: string): Promise<{ ok: boolean; detail: string }> {
  const code = `import(${JSON.stringify(pkgName)}).then((tf) => { console.log('backend=' + tf.getBackend()); }, (e) => { console.error(String(e && e.message || e).split('\\n')[0]); process.exit(3); })`;
  const res = await runTool(process.execPath, ['--input-type=module', '-e', code], {
    cwd: root,
    env: { TF_CPP_MIN_LOG_LEVEL: '2' },
    timeoutMs: 120_000,
  });
  const ok = res.exitCode === 0 && /backend=tensorflow/.test(res.stdout);
  return { ok, detail: ok ? 'loads' : (res.stderr.trim().split('\n').pop() ?? `exit ${res.exitCode}`) };
}

export async function setupTensorflow(o: TensorflowSetupOptions): Promise<void> {
  const pkgName = bindingPackage(o.gpu);
  const pkgDir = join(o.root, 'node_modules', ...pkgName.split('/'));
  const version = await pinnedBindingVersion(o.root);
  const steps: Step[] = [];
  const step = (title: string): Step => {
    const s = { title, started: Date.now() };
    steps.push(s);
    o.log(`▸ ${title}`);
    return s;
  };
  const done = (s: Step, what: string): void => o.log(`  ✓ ${what} (${((Date.now() - s.started) / 1000).toFixed(1)} s)`);

  let s = step(`checking whether ${pkgName} loads`);
  if (!o.force && existsSync(join(pkgDir, 'package.json'))) {
    const probe = await probeBinding(o.root, pkgName);
    if (probe.ok) {
      done(s, `${pkgName} already loads: nothing to do`);
      return;
    }
    o.log(`  ${pkgName} is installed but does not load: ${probe.detail}`);
  } else {
    o.log(`  ${pkgName} is not installed`);
  }

  const cache = buildCacheDir(pkgName, version, o.tfVersion);
  if (!o.force && existsSync(join(cache, 'deps', 'lib')) && existsSync(join(cache, 'lib'))) {
    s = step(`restoring the build cached in ${cache}`);
    if (!existsSync(join(pkgDir, 'package.json')) && !(await installPackage(o.root, pkgName, version, true, o.log))) {
      throw new CliError(`npm could not install ${pkgName}@${version}: is the npm registry reachable?`);
    }
    await restoreBuild(cache, pkgDir);
    const probe = await probeBinding(o.root, pkgName);
    if (probe.ok) return done(s, `${pkgName} loads (restored)`);
    o.log(`  the cached build does not load (${probe.detail}); rebuilding`);
  }

  if (!o.fromWheel && !o.wheel) {
    s = step(`npm install ${pkgName}@${version} (its install script downloads libtensorflow)`);
    const ok = await installPackage(o.root, pkgName, version, false, o.log);
    if (ok && (await probeBinding(o.root, pkgName)).ok) return done(s, `${pkgName} installed and loads`);
    o.log("  the package's own download is not reachable from here; building from a TensorFlow wheel instead");
  }

  s = step('checking build tools and disk');
  const tools = await checkBuildTools();
  await checkFreeDisk(o.root, 2.5e9, 'the TensorFlow C library (~0.85 GB) plus the wheel (~0.3 GB) during the build');
  done(s, `python3 ${tools.python}, ${tools.cxx}, node-gyp ${tools.nodeGyp}, Node headers in ${tools.nodeDir}`);

  s = step(`installing ${pkgName}@${version} without its download script`);
  if (!(await installPackage(o.root, pkgName, version, true, o.log))) {
    throw new CliError(`npm could not install ${pkgName}@${version} even without its install script: is the npm registry reachable?`);
  }
  done(s, 'package files in place');

  s = step(o.wheel ? `reading ${o.wheel}` : `getting the TensorFlow ${o.tfVersion} wheel from pip`);
  const lib = await layOutWheelLibrary({ pkgDir, gpu: o.gpu, tfVersion: o.tfVersion, wheel: o.wheel, log: o.log });
  done(s, `libtensorflow ${lib.version} laid out in ${join(pkgDir, 'deps')}`);

  s = step('compiling the binding (node-gyp, N-API)');
  await buildAddon({ pkgDir, nodeGyp: tools.nodeGypJs, nodeDir: tools.nodeDir, napi: napiBuildVersion(), log: o.log });
  done(s, 'tfjs_binding.node built');

  s = step(`checking that ${pkgName} loads`);
  const probe = await probeBinding(o.root, pkgName);
  if (!probe.ok) throw new CliError(`the built binding does not load: ${probe.detail}`);
  done(s, `${pkgName} loads`);

  s = step(`keeping the build in ${cache} (restored after the next npm ci)`);
  await saveBuild(pkgDir, cache);
  done(s, 'saved');
}

/** `npm install --no-save`: the pinned version, into this project's node_modules. */
async function installPackage(
  root: string,
  pkgName: string,
  version: string,
  ignoreScripts: boolean,
  log: (l: string) => void,
): Promise<boolean> {
  const args = ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `${pkgName}@${version}`];
  if (ignoreScripts) args.push('--ignore-scripts');
  const res = await runTool('npm', args, { cwd: root, timeoutMs: 600_000, env: { ONNXRUNTIME_NODE_INSTALL: 'skip' } });
  if (res.exitCode !== 0) {
    const last = (res.stderr || res.stdout).trim().split('\n').slice(-3).join(' | ');
    log(`  npm install failed (exit ${res.exitCode}): ${last}`);
    return false;
  }
  return existsSync(join(root, 'node_modules', ...pkgName.split('/'), 'package.json'));
}

/** Hard links where the cache and the project share a filesystem: the C library is 0.8 GB. */
async function copyTree(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await mkdir(to, { recursive: true });
  const { execa } = await import('execa');
  const linked = await execa('cp', ['-al', `${from}/.`, to], { reject: false });
  if (linked.exitCode !== 0) await cp(from, to, { recursive: true, verbatimSymlinks: true });
}

async function saveBuild(pkgDir: string, cache: string): Promise<void> {
  await copyTree(join(pkgDir, 'deps'), join(cache, 'deps'));
  await copyTree(join(pkgDir, 'lib'), join(cache, 'lib'));
}

async function restoreBuild(cache: string, pkgDir: string): Promise<void> {
  await copyTree(join(cache, 'deps'), join(pkgDir, 'deps'));
  await copyTree(join(cache, 'lib'), join(pkgDir, 'lib'));
}
