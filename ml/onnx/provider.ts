// ONNX Runtime execution provider: cpu, or cuda where onnxruntime-node's CUDA provider library was
// installed (npm ci on linux-x64 with network, unless ONNXRUNTIME_NODE_INSTALL=skip) and a GPU is
// visible. The choice is a machine setting like the tfjs backend (env CA_PIPE_ORT_PROVIDER), made
// once per process and recorded in provenance; it is not in any key (see README "Engines").
// Untested on a GPU: only the selection logic is tested here.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type OrtProvider = 'cpu' | 'cuda';
export type OrtProviderSetting = OrtProvider | 'auto';
export const ORT_PROVIDER_SETTINGS: readonly OrtProviderSetting[] = ['auto', 'cpu', 'cuda'];

export interface ProviderChoice {
  provider: OrtProvider;
  setting: OrtProviderSetting;
  reason: string;
}

/** What the machine offers, as far as choosing a provider goes. */
export interface CudaProbe {
  /** Path of libonnxruntime_providers_cuda.so when onnxruntime-node has it, else null. */
  library: string | null;
  /** What showed a GPU (a /dev/nvidia* node, nvidia-smi), or null when none is visible. */
  gpu: string | null;
}

export const CUDA_PROVIDER_LIBRARY = 'libonnxruntime_providers_cuda.so';

/** Reads CA_PIPE_ORT_PROVIDER (unset or empty: auto); a bad value is an error naming the variable. */
export function providerSetting(env: NodeJS.ProcessEnv = process.env): OrtProviderSetting {
  const v = env.CA_PIPE_ORT_PROVIDER?.trim();
  if (!v) return 'auto';
  if (!(ORT_PROVIDER_SETTINGS as readonly string[]).includes(v))
    throw new Error(`CA_PIPE_ORT_PROVIDER="${v}" is not one of ${ORT_PROVIDER_SETTINGS.join(', ')}`);
  return v as OrtProviderSetting;
}

/** The decision itself, from the setting and what the probe found. */
export function decideProvider(setting: OrtProviderSetting, probe: CudaProbe): ProviderChoice {
  if (setting === 'cpu') return { provider: 'cpu', setting, reason: 'CA_PIPE_ORT_PROVIDER=cpu' };
  if (setting === 'cuda') {
    // Asked for explicitly: try it even if the probe missed something; session creation reports a failure.
    const missing = [!probe.library && `${CUDA_PROVIDER_LIBRARY} not found in onnxruntime-node`, !probe.gpu && 'no GPU visible'].filter(
      Boolean,
    );
    return { provider: 'cuda', setting, reason: `CA_PIPE_ORT_PROVIDER=cuda${missing.length ? ` (warning: ${missing.join(', ')})` : ''}` };
  }
  if (!probe.library)
    return {
      provider: 'cpu',
      setting,
      reason: `${CUDA_PROVIDER_LIBRARY} is not installed (npm ci with network on linux-x64 installs it unless ONNXRUNTIME_NODE_INSTALL=skip)`,
    };
  if (!probe.gpu) return { provider: 'cpu', setting, reason: `${CUDA_PROVIDER_LIBRARY} is installed but no GPU is visible` };
  return { provider: 'cuda', setting, reason: `${CUDA_PROVIDER_LIBRARY} is installed and a GPU is visible (${probe.gpu})` };
}

/** onnxruntime-node's native folder (bin/napi-v6/<platform>/<arch>), where its install script puts the CUDA libraries. */
export function ortBinaryDir(): string | null {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    // entry is <pkg>/dist/index.js
    return join(dirname(dirname(entry)), 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

/** Whether a GPU is visible: CUDA_VISIBLE_DEVICES hiding all, a device node, else nvidia-smi. */
export function visibleGpu(env: NodeJS.ProcessEnv = process.env, devDir = '/dev'): string | null {
  const cvd = env.CUDA_VISIBLE_DEVICES?.trim();
  if (cvd !== undefined && (cvd === '' || cvd === '-1')) return null;
  let nodes: string[] = [];
  try {
    nodes = readdirSync(devDir).filter((n) => /^nvidia\d+$/.test(n));
  } catch {
    /* no /dev to read */
  }
  if (nodes.length) return `${join(devDir, nodes.sort()[0])}`;
  const smi = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 5000 });
  if (smi.status === 0 && /^GPU \d+/m.test(smi.stdout)) return `nvidia-smi: ${smi.stdout.split('\n')[0].trim()}`;
  return null;
}

export function probeCuda(binDir: string | null = ortBinaryDir()): CudaProbe {
  const lib = binDir ? join(binDir, CUDA_PROVIDER_LIBRARY) : null;
  const library = lib && existsSync(lib) ? lib : null;
  // Without the library the GPU does not matter; skip spawning nvidia-smi.
  return { library, gpu: library ? visibleGpu() : null };
}

/** Execution providers for a session: CUDA nodes fall back to the CPU provider per node. */
export function executionProviders(provider: OrtProvider): Array<'cuda' | 'cpu'> {
  return provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'];
}

let chosen: ProviderChoice | undefined;
let logger: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

/** Where the one-time "onnxruntime provider: …" line goes (default stderr). */
export function setProviderLogger(fn: (line: string) => void): void {
  logger = fn;
}

/**
 * Replaces the process's decision (undefined: decide again on next use). For callers that probe
 * differently, and for tests that must drive the CUDA path on a machine without one.
 */
export function overrideProviderChoice(choice: ProviderChoice | undefined): void {
  chosen = choice;
}

/** The process's provider (env > auto), decided and logged once. */
export function ortProvider(): ProviderChoice {
  if (!chosen) {
    chosen = decideProvider(providerSetting(), probeCuda());
    logger(`onnxruntime provider: ${chosen.provider} (${chosen.reason})`);
  }
  return chosen;
}

/**
 * Called when a CUDA session could not be created: with `auto` the process continues on the CPU
 * provider (and says so); an explicit `cuda` is the user's request, so the failure is theirs to see.
 */
export function cudaFailed(error: Error): ProviderChoice {
  const c = ortProvider();
  if (c.setting === 'cuda') throw new Error(`CA_PIPE_ORT_PROVIDER=cuda: ONNX Runtime could not create a CUDA session: ${error.message}`);
  chosen = {
    provider: 'cpu',
    setting: c.setting,
    reason: `${c.reason}, but creating a CUDA session failed (${error.message.split('\n')[0]}); fell back to cpu`,
  };
  logger(`onnxruntime provider: cpu (${chosen.reason})`);
  return chosen;
}
