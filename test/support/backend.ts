// The tfjs backend a test file runs on: CA_PIPE_BACKEND (the CI runs the ML files once with
// `wasm` and once with `tensorflow`), `wasm` when unset. The choice is exported to the environment
// so that CLI child processes the test spawns use the same backend, and a fallback (the binding
// asked for but not loading) fails the test instead of passing on another backend.
// Not a test file: the test files import it.
import assert from 'node:assert/strict';
import { initBackend, type BackendChoice, type BackendName } from '../../ml/backend/index.js';

export function backendUnderTest(): BackendName {
  const want = (process.env.CA_PIPE_BACKEND?.trim() || 'wasm') as BackendName;
  process.env.CA_PIPE_BACKEND = want;
  return want;
}

/** Initialise the backend under test and assert it is the one that runs. */
export async function initTestBackend(): Promise<BackendChoice> {
  const want = backendUnderTest();
  const got = await initBackend(want);
  assert.equal(got.name, want, `tests asked for the ${want} backend but got ${got.name}: ${got.reason}`);
  return got;
}

/**
 * Whether the native TensorFlow binding can be used by this file. With CA_PIPE_REQUIRE_TENSORFLOW=1
 * (CI) a missing binding is a failure; elsewhere the caller skips with the returned reason.
 */
export async function tensorflowAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  try {
    await import('@tensorflow/tfjs-node' as string);
    return { ok: true };
  } catch (e) {
    const reason = `@tensorflow/tfjs-node does not load (${String((e as Error).message).split('\n')[0]}); run \`npx ca-pipe setup tensorflow\``;
    if (process.env.CA_PIPE_REQUIRE_TENSORFLOW === '1') throw new Error(`CA_PIPE_REQUIRE_TENSORFLOW=1: ${reason}`);
    return { ok: false, reason };
  }
}
