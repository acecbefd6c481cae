// Everything a resumed run needs, gathered from / spread back to the live training objects, so the
// loop cannot forget a piece (the original restored neither the schedule nor the RNG).
import type * as tf from '@tensorflow/tfjs-core';
import type { CheckpointData, CheckpointMeta, LoadedCheckpoint } from './checkpoint.js';
import type { Ema } from './ema.js';
import type { Optimizer } from './optim.js';
import { assignArrays, toArrays } from './tensors.js';

/** Any generator with a JSON-able state, e.g. ml/data/rng.ts's Rng. */
export interface StatefulRng {
  state(): unknown;
  restore(state: never): unknown;
}

export interface LiveTrainState {
  vars: Record<string, tf.Variable>;
  optimizer: Optimizer;
  ema?: Ema | null;
  rngs?: Record<string, StatefulRng>;
}

export function captureTrainState(live: LiveTrainState, meta: Omit<CheckpointMeta, 'rng'>): CheckpointData {
  const rng: Record<string, unknown> = {};
  for (const [k, r] of Object.entries(live.rngs ?? {})) rng[k] = r.state();
  return {
    weights: toArrays(live.vars),
    optimizer: live.optimizer.state(),
    ema: live.ema ? live.ema.state() : null,
    meta: { ...meta, rng },
  };
}

/** Restore weights, optimizer, EMA and RNGs in place; returns the checkpoint's meta (position, best, metrics). */
export function restoreTrainState(live: LiveTrainState, ck: LoadedCheckpoint): CheckpointMeta {
  assignArrays(live.vars, ck.weights, ck.path);
  try {
    live.optimizer.loadState(ck.optimizer);
    if (live.ema) {
      if (!ck.ema) throw new Error('the run uses EMA but the checkpoint has no EMA state');
      live.ema.loadState(ck.ema);
    }
    for (const [k, r] of Object.entries(live.rngs ?? {})) {
      if (!(k in ck.meta.rng)) throw new Error(`no state for RNG '${k}'`);
      r.restore(ck.meta.rng[k] as never);
    }
  } catch (e) {
    throw new Error(`${ck.path}: ${(e as Error).message}`);
  }
  return ck.meta;
}
