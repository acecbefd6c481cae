// tfjs backend choice. Preference order: native TensorFlow bindings (optional dependencies, usually
// absent) → wasm → cpu. The choice is made once per process; later calls return the same answer.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerBatchNormKernels } from './batchnorm-kernels.js';
import './family-kernels.js';
import { registerGradients } from './gradients.js';
import { registerTensorflowKernels } from './tensorflow-kernels.js';
import { registerWasmKernels } from './wasm-kernels.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export interface BackendChoice {
  name: BackendName;
  reason: string;
  /** Where the kernels run: 'gpu' only for tensorflow with tfjs-node-gpu seeing a GPU. */
  device: 'gpu' | 'cpu';
}

const BACKENDS: BackendName[] = ['tensorflow', 'wasm', 'cpu'];
let chosen: Promise<BackendChoice> | undefined;
let logger: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

/** Where the one-time "backend: …" line goes (default stderr). Pass a no-op to silence it. */
export function setBackendLogger(fn: (line: string) => void): void {
  logger = fn;
}

/**
 * The device part of the reason line. tfjs-node-gpu loads on a machine without a usable GPU too
 * (TensorFlow then places every op on the CPU), so the package name alone does not say where it runs.
 */
export function tensorflowDevice(pkg: string, usingGpu: boolean): { device: 'gpu' | 'cpu'; note: string } {
  if (usingGpu) return { device: 'gpu', note: 'on the GPU' };
  if (pkg.endsWith('-gpu')) return { device: 'cpu', note: 'GPU build, but TensorFlow sees no GPU: it runs on the CPU' };
  return { device: 'cpu', note: 'CPU build' };
}

async function tryTensorflow(): Promise<{ pkg: string; device: 'gpu' | 'cpu'; note: string } | undefined> {
  // TensorFlow reads these when its library loads: hide its start-up INFO/WARNING lines unless
  // the user asked for them.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  // TensorFlow enables its oneDNN kernels by default only on some Intel CPUs; elsewhere (this AMD
  // machine) convolutions, their gradients and BatchNorm fall back to Eigen, which trains the
  // quickstart's network ~1.3× slower here. The user's own setting wins (0 turns them off).
  process.env.TF_ENABLE_ONEDNN_OPTS ??= '1';
  // Optional dependencies: never imported statically, so a missing package is not an error.
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      registerTensorflowKernels();
      if (await tf.setBackend('tensorflow')) {
        const usingGpu = (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
        return { pkg, ...tensorflowDevice(pkg, usingGpu) };
      }
    } catch {
      /* not installed or failed to load its native library: fall through */
    }
  }
  return undefined;
}

let wasmFailure = '';

async function tryWasm(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    registerWasmKernels();
    if (await tf.setBackend('wasm')) return true;
    wasmFailure = 'the wasm backend failed to initialise';
  } catch (e) {
    wasmFailure = `@tensorflow/tfjs-backend-wasm failed to load: ${(e as Error).message}`;
  }
  return false;
}

async function choose(pref: BackendName | undefined, source: string): Promise<BackendChoice> {
  // PROD silences tfjs's console banners ("install tfjs-node…"); we log our own choice below.
  tf.env().set('PROD', true);
  registerGradients();
  registerBatchNormKernels();
  if (pref === 'tensorflow') {
    const t = await tryTensorflow();
    if (t) return { name: 'tensorflow', device: t.device, reason: `${source} asked for it; loaded ${t.pkg} (${t.note})` };
    // CI (and anyone who must not silently measure another backend) turns the fallback off.
    if (process.env.CA_PIPE_REQUIRE_TENSORFLOW === '1') {
      throw new Error(
        `${source} asked for the tensorflow backend and CA_PIPE_REQUIRE_TENSORFLOW=1, but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node loads (run \`npx ca-pipe setup tensorflow\`)`,
      );
    }
    if (await tryWasm())
      return {
        name: 'wasm',
        device: 'cpu',
        reason: `${source} asked for tensorflow but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node loads; fell back to wasm`,
      };
  } else if (pref === 'wasm') {
    if (await tryWasm()) return { name: 'wasm', device: 'cpu', reason: `${source} asked for it` };
  } else if (pref === 'cpu') {
    // nothing to try
  } else {
    const t = await tryTensorflow();
    if (t) return { name: 'tensorflow', device: t.device, reason: `${t.pkg} is installed (${t.note})` };
    if (await tryWasm())
      return { name: 'wasm', device: 'cpu', reason: 'no native TensorFlow binding installed; wasm is the fastest available' };
  }
  await tf.setBackend('cpu');
  const why = wasmFailure ? ` (${wasmFailure})` : '';
  return {
    name: 'cpu',
    device: 'cpu',
    reason: pref === 'cpu' ? `${source} asked for it` : `${pref ?? 'tensorflow and wasm'} unavailable${why}; pure-JS cpu fallback`,
  };
}

/**
 * Pick and initialise the tfjs backend (argument > env CA_PIPE_BACKEND > automatic), register our
 * gradients and wasm kernel patches, and log the choice once. Idempotent: later calls return the
 * first choice whatever they ask for.
 */
export function initBackend(pref?: BackendName): Promise<BackendChoice> {
  if (!chosen) {
    const env = process.env.CA_PIPE_BACKEND?.trim();
    let want: BackendName | undefined = pref;
    let source = 'the caller';
    if (!want && env) {
      if (!BACKENDS.includes(env as BackendName)) {
        return Promise.reject(new Error(`CA_PIPE_BACKEND="${env}" is not one of ${BACKENDS.join(', ')}`));
      }
      want = env as BackendName;
      source = 'CA_PIPE_BACKEND';
    }
    chosen = choose(want, source).then(async (c) => {
      await tf.ready();
      logger(`backend: ${c.name} (${c.reason})`);
      return c;
    });
  }
  return chosen;
}

/** The name of the active backend (after initBackend). */
export function activeBackend(): string {
  return tf.getBackend();
}

export { tf };
export { matMulT, registerGradients } from './gradients.js';
