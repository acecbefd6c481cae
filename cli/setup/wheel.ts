// Building @tensorflow/tfjs-node from a TensorFlow pip wheel. The wheel's libtensorflow_cc.so.2 and
// libtensorflow_framework.so.2 export the TF_*/TFE_* C API the binding calls, and its include tree
// has the C headers; laid out as the package's deps/ folder, the addon compiles from the package's
// own sources with node-gyp. Linux only (the wheels' library names are Linux's).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { CliError } from '../common.js';
import { runTool } from './tools.js';

export interface WheelLayout {
  pkgDir: string;
  gpu: boolean;
  tfVersion: string;
  wheel?: string;
  log: (line: string) => void;
}

/** The include folders the binding's two headers pull in (c_api.h, eager/c_api.h and what they include). */
const HEADER_PREFIXES = [
  'tensorflow/include/tensorflow/c/',
  'tensorflow/include/tensorflow/core/platform/',
  'tensorflow/include/tsl/',
  'tensorflow/include/xla/tsl/',
];
const LIBRARIES = ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'];

// Python's zipfile does the extraction: pip is required anyway, and no zip reader ships with Node.
const EXTRACT_PY = `
import json, sys, zipfile, os, shutil
wheel, dest, prefixes, libs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
z = zipfile.ZipFile(wheel)
names = set(z.namelist())
missing = [l for l in libs if l not in names]
if missing:
    sys.exit('the wheel has no ' + ', '.join(missing) + ': not a TensorFlow 2.x Linux wheel?')
n = 0
for name in names:
    if name in libs or (any(name.startswith(p) for p in prefixes) and not name.endswith('/')):
        rel = name[len('tensorflow/include/'):] if name.startswith('tensorflow/include/') else os.path.basename(name)
        target = os.path.join(dest, 'include' if name.startswith('tensorflow/include/') else 'lib', rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, 'wb') as out:
            shutil.copyfileobj(src, out, 1 << 22)
        n += 1
print(n)
`;

// CUDA libraries of NVIDIA's pip wheels (tensorflow[and-cuda]) sit in nvidia/<lib>/lib/*.so*.
const EXTRACT_CUDA_PY = `
import sys, zipfile, os, shutil
dest = sys.argv[1]
n = 0
for wheel in sys.argv[2:]:
    z = zipfile.ZipFile(wheel)
    for name in z.namelist():
        if name.startswith('nvidia/') and '/lib/' in name and '.so' in os.path.basename(name):
            with z.open(name) as src, open(os.path.join(dest, os.path.basename(name)), 'wb') as out:
                shutil.copyfileobj(src, out, 1 << 22)
            n += 1
print(n)
`;

export async function layOutWheelLibrary(o: WheelLayout): Promise<{ version: string }> {
  if (process.platform !== 'linux') {
    throw new CliError(
      `building the binding from a wheel is supported on Linux only (this is ${process.platform}); use the package's own install`,
      2,
    );
  }
  const work = await mkdtemp(join(tmpdir(), 'ca-pipe-tf-wheel-'));
  try {
    const wheels = o.wheel ? [o.wheel] : await downloadWheels(o, work);
    const tfWheel = wheels.find((w) => /^tensorflow(_cpu)?-/.test(basename(w)));
    if (!tfWheel) throw new CliError(`no TensorFlow wheel among ${wheels.map((w) => basename(w)).join(', ')}`);
    const deps = join(o.pkgDir, 'deps');
    await rm(deps, { recursive: true, force: true });
    await mkdir(join(deps, 'lib'), { recursive: true });
    const ex = await runTool('python3', ['-c', EXTRACT_PY, tfWheel, deps, JSON.stringify(HEADER_PREFIXES), JSON.stringify(LIBRARIES)], {
      timeoutMs: 600_000,
    });
    if (ex.exitCode !== 0) throw new CliError(`cannot extract ${tfWheel}: ${ex.stderr.trim().split('\n').pop()}`);
    o.log(`  extracted ${ex.stdout.trim()} files from ${basename(tfWheel)}`);
    const lib = join(deps, 'lib');
    // The binding links -ltensorflow -ltensorflow_framework and loads libtensorflow.so.2 at run time.
    await symlink('libtensorflow_cc.so.2', join(lib, 'libtensorflow.so.2'));
    await symlink('libtensorflow.so.2', join(lib, 'libtensorflow.so'));
    await symlink('libtensorflow_framework.so.2', join(lib, 'libtensorflow_framework.so'));
    if (o.gpu) {
      const cuda = wheels.filter((w) => basename(w).startsWith('nvidia_'));
      const n = await runTool('python3', ['-c', EXTRACT_CUDA_PY, lib, ...cuda], { timeoutMs: 1_200_000 });
      if (n.exitCode !== 0) throw new CliError(`cannot extract the CUDA libraries: ${n.stderr.trim().split('\n').pop()}`);
      o.log(`  extracted ${n.stdout.trim()} CUDA libraries from ${cuda.length} NVIDIA wheels`);
    }
    const version = /^tensorflow(?:_cpu)?-([^-]+)-/.exec(basename(tfWheel))?.[1] ?? o.tfVersion;
    return { version };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function downloadWheels(o: WheelLayout, dir: string): Promise<string[]> {
  // The CPU wheel is enough for the CPU binding; the GPU one needs TensorFlow's CUDA-12 wheels too.
  const spec = o.gpu ? `tensorflow[and-cuda]==${o.tfVersion}` : `tensorflow-cpu==${o.tfVersion}`;
  const args = ['-m', 'pip', 'download', '--only-binary=:all:', '--progress-bar=off', '-d', dir, spec];
  if (!o.gpu) args.splice(3, 0, '--no-deps');
  o.log(`  pip ${args.slice(2).join(' ')}`);
  const res = await runTool('python3', args, { timeoutMs: 1_800_000 });
  if (res.exitCode !== 0) {
    const why = res.stderr
      .trim()
      .split('\n')
      .filter((l) => /error|No matching|Could not/i.test(l))
      .slice(-2)
      .join(' | ');
    throw new CliError(
      `pip could not get ${spec}: ${why || `exit ${res.exitCode}`}\n` +
        `  (pass a wheel you have with --wheel FILE, or another version with --tf-version; any TensorFlow 2.x Linux x86-64 wheel ≥ 2.9 exports the C API the binding needs)`,
    );
  }
  const files = (await readdir(dir)).filter((f) => f.endsWith('.whl')).map((f) => join(dir, f));
  o.log(`  downloaded ${files.map((f) => basename(f)).join(', ')}`);
  return files;
}

export interface AddonBuild {
  pkgDir: string;
  nodeGyp: string;
  nodeDir: string;
  napi: number;
  log: (line: string) => void;
}

/** node-gyp rebuild in the package, then the addon where node-pre-gyp's `find` looks for it. */
export async function buildAddon(o: AddonBuild): Promise<void> {
  const tail: string[] = [];
  // binding.gyp reads node-pre-gyp's variables (module_name, module_path) as node-pre-gyp passes them.
  const args = [
    o.nodeGyp,
    'rebuild',
    `--nodedir=${o.nodeDir}`,
    `--jobs=${availableParallelism()}`,
    '--module_name=tfjs_binding',
    `--module_path=lib/napi-v${o.napi}`,
    `--napi_build_version=${o.napi}`,
  ];
  const res = await runTool(process.execPath, args, {
    cwd: o.pkgDir,
    timeoutMs: 1_200_000,
    onLine: (l) => {
      tail.push(l);
      if (tail.length > 25) tail.shift();
    },
  });
  const built = join(o.pkgDir, 'build', 'Release', 'tfjs_binding.node');
  if (res.exitCode !== 0 || !existsSync(built)) {
    throw new CliError(`node-gyp could not build the binding (exit ${res.exitCode}); its last lines:\n${tail.join('\n')}`);
  }
  const dest = join(o.pkgDir, 'lib', `napi-v${o.napi}`);
  await rm(join(o.pkgDir, 'lib'), { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  await copyFile(built, join(dest, 'tfjs_binding.node'));
  // The object files are 0.1 GB of nothing the binding needs at run time.
  await rm(join(o.pkgDir, 'build'), { recursive: true, force: true });
}
