// Optimizers over named tf.Variables with torch.optim update rules and explicit state.
// State lives in tensors this class owns; `state()` exports it as plain Float32Arrays so a
// checkpoint can restore it bit for bit (float32 → Float32Array → float32 is lossless).
import * as tf from '@tensorflow/tfjs-core';

export type NamedVariables = Record<string, tf.Variable>;

/**
 * Where an update's arithmetic runs. 'device': as tfjs ops on the backend's tensors. 'host': in JS
 * over Float32Arrays (read the parameter and its gradient, write the parameter back), with every
 * operation rounded to float32 exactly as the device ops round it, so both give the same bits.
 * Why: on the native TensorFlow backend each op costs ~35 µs of dispatch, and Adam's ~12 ops per
 * variable made the update alone 17 ms of a 90 ms small-model step; on the host it is ~5 ms.
 */
export type UpdatePlacement = 'device' | 'host';

/**
 * With 'host', variables larger than this stay on the device: there the op count no longer
 * dominates, and TensorFlow's multi-threaded element-wise ops beat one JS thread (the frozen
 * CA-Stream head on ResNet-50, 2M-element projections: 97–99 img/s host, 108–122 device).
 */
export const HOST_UPDATE_MAX_ELEMENTS = 1 << 18;

/**
 * The host only where it is measured faster: TensorFlow on the CPU. On wasm the device ops are
 * cheap (its update is faster than the host's), and on a GPU the copies would cross the bus.
 */
export function defaultPlacement(backend: string, device: 'cpu' | 'gpu'): UpdatePlacement {
  return backend === 'tensorflow' && device === 'cpu' ? 'host' : 'device';
}

/** The rule above for the running backend; CA_PIPE_OPTIMIZER_UPDATE=host|device overrides it (same bits either way). */
export function placementForActiveBackend(env: NodeJS.ProcessEnv = process.env): UpdatePlacement {
  const forced = env.CA_PIPE_OPTIMIZER_UPDATE?.trim();
  if (forced === 'host' || forced === 'device') return forced;
  if (forced) throw new Error(`CA_PIPE_OPTIMIZER_UPDATE="${forced}" is not one of host, device`);
  return defaultPlacement(tf.getBackend(), (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true ? 'gpu' : 'cpu');
}

/** float32 rounding of a double: + − × ÷ √ of float32 values computed in double and rounded once are the IEEE float32 results. */
const f32 = Math.fround;
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

/** A slot's value: a tensor on the device placement, a Float32Array on the host one. */
type Slot = tf.Tensor | Float32Array;

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
  /** slot name → variable name → value (e.g. 'exp_avg' → 'fc.weight' → m). */
  protected readonly slots = new Map<string, Map<string, Slot>>();
  /** Fixed at construction: a slot's representation follows it. */
  readonly placement: UpdatePlacement;
  /** Per-variable update counts (torch keeps one `step` per parameter). */
  protected readonly steps = new Map<string, number>();
  /** tf.Variable.name → key in `vars`. */
  private readonly byVariableName = new Map<string, string>();

  constructor(vars: NamedVariables, lr: number, weightDecay: number, groups?: ParamGroupSpec[], placement: UpdatePlacement = 'device') {
    this.placement = placement;
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
      const p = this.vars[name];
      const lr = this.lr * group.lrMult;
      if (!this.onHost(p)) {
        this.update(name, p, g, lr, group.weightDecay, step);
        continue;
      }
      const next = new Float32Array(p.size);
      this.updateHost(name, p.dataSync() as Float32Array, g.dataSync() as Float32Array, next, lr, group.weightDecay, step);
      // assign() takes its own reference: ours must go, or every step keeps the old buffers alive.
      const t = tf.tensor(next, p.shape, 'float32');
      p.assign(t);
      t.dispose();
    }
  }

  /** Whether this variable's update (and its slots) live on the host. */
  private onHost(v: tf.Variable): boolean {
    return this.placement === 'host' && v.size <= HOST_UPDATE_MAX_ELEMENTS;
  }

  protected abstract update(name: string, p: tf.Variable, g: tf.Tensor, lr: number, wd: number, step: number): void;

  /** The same rule as `update`, op for op in float32: writes the new parameter into `out`. */
  protected abstract updateHost(
    name: string,
    p: Float32Array,
    g: Float32Array,
    out: Float32Array,
    lr: number,
    wd: number,
    step: number,
  ): void;

  protected getSlot(slot: string, name: string): tf.Tensor | undefined {
    return this.slots.get(slot)?.get(name) as tf.Tensor | undefined;
  }

  /** Replace a slot tensor, keeping it alive beyond the caller's tidy and freeing the old one. */
  protected setSlot(slot: string, name: string, t: tf.Tensor): void {
    let m = this.slots.get(slot);
    if (!m) this.slots.set(slot, (m = new Map()));
    const old = m.get(name) as tf.Tensor | undefined;
    m.set(name, tf.keep(t));
    if (old && old !== t) old.dispose();
  }

  /** The host placement's slot, updated in place; `fresh` says it was just created (zeros). */
  protected hostSlot(slot: string, name: string, size: number): { value: Float32Array; fresh: boolean } {
    let m = this.slots.get(slot);
    if (!m) this.slots.set(slot, (m = new Map()));
    const have = m.get(name) as Float32Array | undefined;
    if (have) return { value: have, fresh: false };
    const value = new Float32Array(size);
    m.set(name, value);
    return { value, fresh: true };
  }

  /** Every slot as `<slot>/<variable>`, plus `step/<variable>` counters. */
  state(): OptimizerState {
    const out: OptimizerState = {};
    for (const [slot, m] of this.slots) {
      for (const [name, t] of m) out[`${slot}/${name}`] = Float32Array.from(t instanceof Float32Array ? t : (t.dataSync() as Float32Array));
    }
    for (const [name, n] of this.steps) out[`step/${name}`] = encodeCount(n);
    return out;
  }

  loadState(state: OptimizerState): void {
    const slotNames = new Set(this.slotNames());
    const slots = new Map<string, Map<string, Slot>>();
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
        m.set(name, this.onHost(v) ? Float32Array.from(data) : tf.keep(tf.tensor(Float32Array.from(data), v.shape, 'float32')));
      }
      for (const [slot, m] of slots) {
        for (const name of m.keys())
          if (!steps.has(name)) throw new Error(`optimizer state has '${slot}/${name}' but no 'step/${name}' counter`);
      }
    } catch (e) {
      disposeSlotMaps(slots);
      throw e;
    }
    this.disposeSlots();
    for (const [k, m] of slots) this.slots.set(k, m);
    this.steps.clear();
    for (const [k, n] of steps) this.steps.set(k, n);
  }

  protected abstract slotNames(): string[];

  private disposeSlots(): void {
    disposeSlotMaps(this.slots);
    this.slots.clear();
  }

  dispose(): void {
    this.disposeSlots();
    this.steps.clear();
  }
}

function disposeSlotMaps(slots: Map<string, Map<string, Slot>>): void {
  for (const m of slots.values()) for (const t of m.values()) if (!(t instanceof Float32Array)) t.dispose();
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
  placement?: UpdatePlacement;
}

/** torch.optim.SGD: g += wd·p; buf = g on the first step, else μ·buf + (1−τ)·g; nesterov g += μ·buf. */
export class Sgd extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;

  constructor(vars: NamedVariables, o: SgdOptions) {
    super(vars, o.lr, o.weightDecay ?? 0, o.groups, o.placement);
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

  protected updateHost(name: string, p: Float32Array, grad: Float32Array, out: Float32Array, lr: number, wd: number): void {
    const [fwd, mu, keep, flr] = [f32(wd), f32(this.momentum), f32(1 - this.dampening), f32(lr)];
    const buf = this.momentum !== 0 ? this.hostSlot('momentum_buffer', name, p.length) : undefined;
    for (let i = 0; i < p.length; i++) {
      let g = wd !== 0 ? f32(grad[i]! + f32(p[i]! * fwd)) : grad[i]!;
      if (buf) {
        const b = buf.fresh ? g : f32(f32(buf.value[i]! * mu) + f32(g * keep));
        buf.value[i] = b;
        g = this.nesterov ? f32(g + f32(b * mu)) : b;
      }
      out[i] = f32(p[i]! - f32(g * flr));
    }
  }
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  groups?: ParamGroupSpec[];
  placement?: UpdatePlacement;
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
    super(vars, o.lr, o.weightDecay ?? (decoupled ? 0.01 : 0), o.groups, o.placement);
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

  protected updateHost(name: string, p: Float32Array, grad: Float32Array, out: Float32Array, lr: number, wd: number, step: number): void {
    const decay = wd !== 0 && this.decoupled ? f32(1 - lr * wd) : 1;
    const coupled = wd !== 0 && !this.decoupled ? f32(wd) : 0;
    const [b1, c1, b2, c2, eps] = [f32(this.beta1), f32(1 - this.beta1), f32(this.beta2), f32(1 - this.beta2), f32(this.eps)];
    const bc2Sqrt = f32(Math.sqrt(1 - Math.pow(this.beta2, step)));
    const rate = f32(lr / (1 - Math.pow(this.beta1, step)));
    const m = this.hostSlot('exp_avg', name, p.length).value;
    const v = this.hostSlot('exp_avg_sq', name, p.length).value;
    for (let i = 0; i < p.length; i++) {
      const g = coupled !== 0 ? f32(grad[i]! + f32(p[i]! * coupled)) : grad[i]!;
      const param = decay !== 1 ? f32(p[i]! * decay) : p[i]!;
      const mi = (m[i] = f32(f32(m[i]! * b1) + f32(g * c1)));
      const vi = (v[i] = f32(f32(v[i]! * b2) + f32(f32(g * g) * c2)));
      const denom = f32(f32(f32(Math.sqrt(vi)) / bc2Sqrt) + eps);
      out[i] = f32(param - f32(f32(mi / denom) * rate));
    }
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
export function createOptimizer(
  vars: NamedVariables,
  cfg: OptimizerConfig,
  groups?: ParamGroupSpec[],
  placement: UpdatePlacement = 'device',
): Optimizer {
  switch (cfg.kind) {
    case 'sgd':
      return new Sgd(vars, {
        lr: cfg.lr,
        momentum: cfg.momentum,
        dampening: cfg.dampening,
        nesterov: cfg.nesterov,
        weightDecay: cfg.weightDecay,
        groups,
        placement,
      });
    case 'adam':
      return new Adam(vars, { lr: cfg.lr, betas: cfg.betas, eps: cfg.eps, weightDecay: cfg.weightDecay, groups, placement });
    case 'adamw':
      return new AdamW(vars, { lr: cfg.lr, betas: cfg.betas, eps: cfg.eps, weightDecay: cfg.weightDecay, groups, placement });
    default:
      throw new Error(`unknown optimizer kind '${(cfg as { kind: string }).kind}' (expected sgd, adam or adamw)`);
  }
}
