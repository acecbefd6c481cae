// Exponential moving average of named weights, with exportable state.
// Update (torch's lerp form): ema ← ema + (1 − d)·(w − ema). With warm-up, d = min(decay, (1+n)/(10+n))
// for the n-th update (n from 0), so early averages are not dominated by the random initialisation.
import * as tf from '@tensorflow/tfjs-core';
import { decodeCount, encodeCount } from './optim.js';

export interface EmaOptions {
  decay: number;
  warmup?: boolean;
}

export class Ema {
  readonly decay: number;
  readonly warmup: boolean;
  private shadow = new Map<string, tf.Tensor>();
  private updates = 0;

  /** Starts as a copy of `weights`. */
  constructor(weights: Record<string, tf.Tensor>, o: EmaOptions) {
    if (!(o.decay >= 0 && o.decay < 1)) throw new Error(`ema: decay must be in [0, 1), got ${o.decay}`);
    this.decay = o.decay;
    this.warmup = o.warmup ?? false;
    for (const [name, w] of Object.entries(weights)) this.shadow.set(name, tf.keep(tf.clone(w)));
  }

  /** The decay the next update will use. */
  currentDecay(): number {
    return this.warmup ? Math.min(this.decay, (1 + this.updates) / (10 + this.updates)) : this.decay;
  }

  get numUpdates(): number {
    return this.updates;
  }

  update(weights: Record<string, tf.Tensor>): void {
    const names = Object.keys(weights);
    for (const n of names) if (!this.shadow.has(n)) throw new Error(`ema.update: '${n}' is not an averaged weight`);
    if (names.length !== this.shadow.size) {
      const missing = [...this.shadow.keys()].filter((n) => !(n in weights));
      throw new Error(`ema.update: missing weights ${missing.join(', ')}`);
    }
    const d = this.currentDecay();
    for (const n of names) {
      const old = this.shadow.get(n)!;
      const next = tf.tidy(() => tf.add(old, tf.mul(tf.sub(weights[n], old), 1 - d)));
      this.shadow.set(n, tf.keep(next));
      old.dispose();
    }
    this.updates++;
  }

  /** The averaged weights (owned by the EMA: do not dispose). */
  weights(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.shadow);
  }

  state(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = { updates: encodeCount(this.updates) };
    for (const [n, t] of this.shadow) out[`avg/${n}`] = Float32Array.from(t.dataSync() as Float32Array);
    return out;
  }

  loadState(state: Record<string, Float32Array>): void {
    const next = new Map<string, tf.Tensor>();
    for (const [n, t] of this.shadow) {
      const a = state[`avg/${n}`];
      if (!a) throw new Error(`ema state lacks 'avg/${n}'`);
      if (a.length !== t.size) throw new Error(`ema state 'avg/${n}' has ${a.length} values, the weight has ${t.size}`);
      next.set(n, tf.keep(tf.tensor(Float32Array.from(a), t.shape, 'float32')));
    }
    const extra = Object.keys(state).filter((k) => k !== 'updates' && !(k.startsWith('avg/') && this.shadow.has(k.slice(4))));
    if (extra.length || !state.updates) {
      for (const t of next.values()) t.dispose();
      throw new Error(extra.length ? `ema state has unknown keys: ${extra.join(', ')}` : "ema state lacks 'updates'");
    }
    for (const t of this.shadow.values()) t.dispose();
    this.shadow = next;
    this.updates = decodeCount(state.updates, 'updates');
  }

  dispose(): void {
    for (const t of this.shadow.values()) t.dispose();
    this.shadow.clear();
  }
}

/**
 * torchvision's reference adjustment (used by the original recipe): `decay` is meant per sample at
 * a reference setting, so α = 1 − decay is scaled by batch·every/epochs and capped at 1.
 */
export function emaDecayForRun(decay: number, batchSize: number, every: number, epochs: number): number {
  const alpha = Math.min(1, ((1 - decay) * (batchSize * every)) / epochs);
  return 1 - alpha;
}
