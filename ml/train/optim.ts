// Optimizers over named tf.Variables with torch.optim update rules and explicit state.
// State lives in tensors this class owns; `state()` exports it as plain Float32Arrays so a
// checkpoint can restore it bit for bit (float32 → Float32Array → float32 is lossless).
import * as tf from '@tensorflow/tfjs-core';

export type NamedVariables = Record<string, tf.Variable>;
export type NamedTensors = Record<string, tf.Tensor>;
export type OptimizerState = Record<string, Float32Array>;

export interface ParamGroupSpec {
  /** Variable names in this group; every optimized variable belongs to exactly one group. */
  names: string[];
  /** Multiplies the scheduled learning rate (e.g. a higher rate for the CA stream). Default 1. */
  lrMult?: number;
  /** Overrides the optimizer's weight decay for this group (e.g. 0 for biases and tokens). */
  weightDecay?: number;
}

interface Group {
  names: string[];
  lrMult: number;
  weightDecay: number;
}

/** Step counters are stored as two float32-exact halves so counts beyond 2^24 survive export. */
export function encodeCount(n: number): Float32Array {
  return new Float32Array([Math.floor(n / 65536), n % 65536]);
}
export function decodeCount(a: Float32Array, key: string): number {
  if (a.length !== 2) throw new Error(`optimizer state '${key}': expected a 2-element counter, got ${a.length} elements`);
  return a[0] * 65536 + a[1];
}

export abstract class Optimizer {
  /** Base learning rate; the schedule sets it before each step, groups scale it by lrMult. */
  lr: number;
  readonly vars: NamedVariables;
  protected readonly groups: Group[];
  protected readonly groupOf = new Map<string, Group>();
  /** slot name → variable name → tensor (e.g. 'exp_avg' → 'fc.weight' → m). */
  protected readonly slots = new Map<string, Map<string, tf.Tensor>>();
  /** Per-variable update counts (torch keeps one `step` per parameter). */
  protected readonly steps = new Map<string, number>();
  /** tf.Variable.name → key in `vars`. */
  private readonly byVariableName = new Map<string, string>();

  constructor(vars: NamedVariables, lr: number, weightDecay: number, groups?: ParamGroupSpec[]) {
    if (!(lr >= 0)) throw new Error(`optimizer: lr must be >= 0, got ${lr}`);
    if (!(weightDecay >= 0)) throw new Error(`optimizer: weight decay must be >= 0, got ${weightDecay}`);
    this.lr = lr;
    this.vars = vars;
    const specs = groups ?? [{ names: Object.keys(vars) }];
    this.groups = specs.map((g, i) => {
      const lrMult = g.lrMult ?? 1;
      const wd = g.weightDecay ?? weightDecay;
      if (!(lrMult >= 0)) throw new Error(`optimizer: param group ${i}: lrMult must be >= 0, got ${lrMult}`);
      if (!(wd >= 0)) throw new Error(`optimizer: param group ${i}: weightDecay must be >= 0, got ${wd}`);
      return { names: [...g.names], lrMult, weightDecay: wd };
    });
    this.groups.forEach((g, i) => {
      for (const name of g.names) {
        if (!(name in vars)) throw new Error(`optimizer: param group ${i} names '${name}', which is not among the variables`);
        if (this.groupOf.has(name)) throw new Error(`optimizer: variable '${name}' is in more than one param group`);
        this.groupOf.set(name, g);
      }
    });
    for (const [name, v] of Object.entries(vars)) this.byVariableName.set(v.name, name);
    const missing = Object.keys(vars).filter((n) => !this.groupOf.has(n));
    if (missing.length) throw new Error(`optimizer: variables in no param group: ${missing.join(', ')}`);
  }

  /**
   * Apply one update. Gradients are keyed by the names of `vars`, or by the tf.Variable names (as
   * tf.variableGrads returns them). Variables without a gradient are skipped (torch: p.grad = None).
   */
  step(grads: NamedTensors): void {
    const byName = new Map<string, tf.Tensor>();
    for (const [key, g] of Object.entries(grads)) {
      const name = this.groupOf.has(key) ? key : this.byVariableName.get(key);
      if (name === undefined) throw new Error(`optimizer.step: gradient for unknown variable '${key}'`);
      if (byName.has(name)) throw new Error(`optimizer.step: two gradients for '${name}'`);
      const v = this.vars[name];
      if (!sameShape(v.shape, g.shape)) {
        throw new Error(`optimizer.step: gradient for '${name}' has shape [${g.shape}] but the variable has [${v.shape}]`);
      }
      byName.set(name, g);
    }
    for (const [name, g] of byName) {
      const group = this.groupOf.get(name)!;
      const step = (this.steps.get(name) ?? 0) + 1;
      this.steps.set(name, step);
      this.update(name, this.vars[name], g, this.lr * group.lrMult, group.weightDecay, step);
    }
  }

  protected abstract update(name: string, p: tf.Variable, g: tf.Tensor, lr: number, wd: number, step: number): void;

  protected getSlot(slot: string, name: string): tf.Tensor | undefined {
    return this.slots.get(slot)?.get(name);
  }

  /** Replace a slot tensor, keeping it alive beyond the caller's tidy and freeing the old one. */
  protected setSlot(slot: string, name: string, t: tf.Tensor): void {
    let m = this.slots.get(slot);
    if (!m) this.slots.set(slot, (m = new Map()));
    const old = m.get(name);
    m.set(name, tf.keep(t));
    if (old && old !== t) old.dispose();
  }

  /** Every slot as `<slot>/<variable>`, plus `step/<variable>` counters. */
  state(): OptimizerState {
    const out: OptimizerState = {};
    for (const [slot, m] of this.slots) {
      for (const [name, t] of m) out[`${slot}/${name}`] = Float32Array.from(t.dataSync() as Float32Array);
    }
    for (const [name, n] of this.steps) out[`step/${name}`] = encodeCount(n);
    return out;
  }

  loadState(state: OptimizerState): void {
    const slotNames = new Set(this.slotNames());
    const slots = new Map<string, Map<string, tf.Tensor>>();
    const steps = new Map<string, number>();
    try {
      for (const [key, data] of Object.entries(state)) {
        const cut = key.indexOf('/');
        const slot = key.slice(0, cut);
        const name = key.slice(cut + 1);
        if (cut < 0 || !(name in this.vars)) throw new Error(`optimizer state key '${key}' names no optimized variable`);
        if (!(data instanceof Float32Array)) throw new Error(`optimizer state '${key}' is not a Float32Array`);
        if (slot === 'step') {
          steps.set(name, decodeCount(data, key));
          continue;
        }
        if (!slotNames.has(slot))
          throw new Error(
            `optimizer state key '${key}': ${this.constructor.name} has no slot '${slot}' (slots: ${[...slotNames].join(', ') || 'none'})`,
          );
        const v = this.vars[name];
        if (data.length !== v.size) throw new Error(`optimizer state '${key}' has ${data.length} values but '${name}' has ${v.size}`);
        let m = slots.get(slot);
        if (!m) slots.set(slot, (m = new Map()));
        m.set(name, tf.keep(tf.tensor(Float32Array.from(data), v.shape, 'float32')));
      }
      for (const [slot, m] of slots) {
        for (const name of m.keys())
          if (!steps.has(name)) throw new Error(`optimizer state has '${slot}/${name}' but no 'step/${name}' counter`);
      }
    } catch (e) {
      for (const m of slots.values()) for (const t of m.values()) t.dispose();
      throw e;
    }
    this.disposeSlots();
    for (const [k, m] of slots) this.slots.set(k, m);
    this.steps.clear();
    for (const [k, n] of steps) this.steps.set(k, n);
  }

  protected abstract slotNames(): string[];

  private disposeSlots(): void {
    for (const m of this.slots.values()) for (const t of m.values()) t.dispose();
    this.slots.clear();
  }

  dispose(): void {
    this.disposeSlots();
    this.steps.clear();
  }
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  groups?: ParamGroupSpec[];
}

/** torch.optim.SGD: g += wd·p; buf = g on the first step, else μ·buf + (1−τ)·g; nesterov g += μ·buf. */
export class Sgd extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;

  constructor(vars: NamedVariables, o: SgdOptions) {
    super(vars, o.lr, o.weightDecay ?? 0, o.groups);
    this.momentum = o.momentum ?? 0;
    this.dampening = o.dampening ?? 0;
    this.nesterov = o.nesterov ?? false;
    if (!(this.momentum >= 0)) throw new Error(`sgd: momentum must be >= 0, got ${this.momentum}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new Error('sgd: nesterov momentum requires momentum > 0 and dampening 0');
    }
  }

  protected slotNames(): string[] {
    return ['momentum_buffer'];
  }

  protected update(name: string, p: tf.Variable, grad: tf.Tensor, lr: number, wd: number): void {
    tf.tidy(() => {
      let g = grad;
      if (wd !== 0) g = tf.add(g, tf.mul(p, wd));
      if (this.momentum !== 0) {
        const prev = this.getSlot('momentum_buffer', name);
        const buf = prev ? tf.add(tf.mul(prev, this.momentum), tf.mul(g, 1 - this.dampening)) : tf.clone(g);
        this.setSlot('momentum_buffer', name, buf);
        g = this.nesterov ? tf.add(g, tf.mul(buf, this.momentum)) : buf;
      }
      p.assign(tf.sub(p, tf.mul(g, lr)));
    });
  }
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  groups?: ParamGroupSpec[];
}

/**
 * torch.optim.Adam (coupled L2: g += wd·p) or, with `decoupled`, torch.optim.AdamW (p ← p·(1 − lr·wd)
 * before the moment update). Bias-corrected: p ← p − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε).
 */
export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly decoupled: boolean;

  constructor(vars: NamedVariables, o: AdamOptions, decoupled = false) {
    super(vars, o.lr, o.weightDecay ?? (decoupled ? 0.01 : 0), o.groups);
    [this.beta1, this.beta2] = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.decoupled = decoupled;
    for (const [k, b] of [
      ['beta1', this.beta1],
      ['beta2', this.beta2],
    ] as const) {
      if (!(b >= 0 && b < 1)) throw new Error(`adam: ${k} must be in [0, 1), got ${b}`);
    }
    if (!(this.eps >= 0)) throw new Error(`adam: eps must be >= 0, got ${this.eps}`);
  }

  protected slotNames(): string[] {
    return ['exp_avg', 'exp_avg_sq'];
  }

  protected update(name: string, p: tf.Variable, grad: tf.Tensor, lr: number, wd: number, step: number): void {
    tf.tidy(() => {
      let g = grad;
      let param: tf.Tensor = p;
      if (wd !== 0) {
        if (this.decoupled) param = tf.mul(p, 1 - lr * wd);
        else g = tf.add(g, tf.mul(p, wd));
      }
      const m0 = this.getSlot('exp_avg', name) ?? tf.zerosLike(p);
      const v0 = this.getSlot('exp_avg_sq', name) ?? tf.zerosLike(p);
      const m = tf.add(tf.mul(m0, this.beta1), tf.mul(g, 1 - this.beta1));
      const v = tf.add(tf.mul(v0, this.beta2), tf.mul(tf.mul(g, g), 1 - this.beta2));
      this.setSlot('exp_avg', name, m);
      this.setSlot('exp_avg_sq', name, v);
      const bc1 = 1 - Math.pow(this.beta1, step);
      const bc2Sqrt = Math.sqrt(1 - Math.pow(this.beta2, step));
      const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), this.eps);
      p.assign(tf.sub(param, tf.mul(tf.div(m, denom), lr / bc1)));
    });
  }
}

export class AdamW extends Adam {
  constructor(vars: NamedVariables, o: AdamOptions) {
    super(vars, o, true);
  }
}

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

export interface OptimizerConfig {
  kind: OptimizerKind;
  lr: number;
  weightDecay?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  betas?: [number, number];
  eps?: number;
}

/** Build an optimizer from a (recipe) config. */
export function createOptimizer(vars: NamedVariables, cfg: OptimizerConfig, groups?: ParamGroupSpec[]): Optimizer {
  switch (cfg.kind) {
    case 'sgd':
      return new Sgd(vars, {
        lr: cfg.lr,
        momentum: cfg.momentum,
        dampening: cfg.dampening,
        nesterov: cfg.nesterov,
        weightDecay: cfg.weightDecay,
        groups,
      });
    case 'adam':
      return new Adam(vars, { lr: cfg.lr, betas: cfg.betas, eps: cfg.eps, weightDecay: cfg.weightDecay, groups });
    case 'adamw':
      return new AdamW(vars, { lr: cfg.lr, betas: cfg.betas, eps: cfg.eps, weightDecay: cfg.weightDecay, groups });
    default:
      throw new Error(`unknown optimizer kind '${(cfg as { kind: string }).kind}' (expected sgd, adam or adamw)`);
  }
}
