// Train/validation splits. Like the original `train_splitter`: shuffle [0, N) with the seed,
// validation = the first floor(N·fraction), training = the rest (our RNG, not Python's).
import { Rng } from './rng.js';

export interface Splits {
  train: number[];
  val: number[];
}

export function randomSplit(n: number, fraction: number, seed: number): Splits {
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`split.fraction must be in [0, 1), got ${fraction}`);
  const perm = new Rng(seed, 0x5b117).permutation(n);
  const nVal = Math.floor(n * fraction);
  const byId = (a: number, b: number): number => a - b;
  return { val: perm.slice(0, nVal).sort(byId), train: perm.slice(nVal).sort(byId) };
}

/** Validates a user-given {"train":[…],"val":[…]} against the index size. */
export function checkSplits(data: unknown, n: number, source: string): Splits {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new Error(`${source}: expected a JSON object {"train": [...], "val": [...]}`);
  }
  const obj = data as Record<string, unknown>;
  const seen = new Map<number, string>();
  const read = (name: 'train' | 'val'): number[] => {
    const v = obj[name];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new Error(`${source}: "${name}" must be an array of item indices`);
    return v.map((x, i) => {
      if (!Number.isInteger(x) || (x as number) < 0 || (x as number) >= n) {
        throw new Error(`${source}: ${name}[${i}] = ${JSON.stringify(x)} is not an index in [0, ${n})`);
      }
      const prev = seen.get(x as number);
      if (prev !== undefined) throw new Error(`${source}: index ${x} appears twice (${prev} and ${name}[${i}])`);
      seen.set(x as number, `${name}[${i}]`);
      return x as number;
    });
  };
  const train = read('train');
  const val = read('val');
  if (train.length === 0) throw new Error(`${source}: "train" is missing or empty`);
  return { train, val };
}
