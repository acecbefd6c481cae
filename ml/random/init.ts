// Seeded random numbers for parameter initialisation. Generated in JS (not by a tfjs backend) so a
// seed gives the same weights on every backend and machine. A splitmix32 stream (not xoshiro.ts):
// initial weights, and so every scratch-trained model, are a function of it.
import { splitmix32 } from './splitmix.js';

/** splitmix32 stream: uniform floats in [0, 1), normals, and named child streams. */
export class InitRng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
  }

  next(): number {
    const z = splitmix32(this.state);
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return z / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box–Muller, both values used). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Child generator for a named parameter, so adding a parameter does not shift all the others. */
  fork(label: string): InitRng {
    let h = this.state ^ 0x811c9dc5;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new InitRng(h);
  }
}

export function fillNormal(n: number, mean: number, std: number, rng: InitRng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * rng.normal();
  return out;
}

export function fillUniform(n: number, bound: number, rng: InitRng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
  return out;
}
