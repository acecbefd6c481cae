// Learning-rate schedules as pure functions of the training position, in closed form.
// They equal what PyTorch's schedulers produce when stepped once per epoch ('epoch' granularity)
// or once per iteration ('iter' granularity, with epoch quantities converted to iterations):
//   step       StepLR            base·γ^⌊t/s⌋
//   multistep  MultiStepLR       base·γ^#{m ≤ t}
//   cosine     CosineAnnealingLR η_min + (base − η_min)·(1 + cos(π·(t−W)/(T−W)))/2 for t ≥ W
//   warm-up    LinearLR          factor f0 + (1 − f0)·t/W for t < W
// Cosine with warm-up is SequentialLR([LinearLR(W), CosineAnnealingLR(T_max = T − W)], [W]), i.e.
// the cosine spans the epochs that remain after warm-up (the original fixed T_max = 100 whatever the
// run length). Step and multistep keep their milestones absolute; warm-up there multiplies the lr
// (ChainedScheduler of LinearLR and the step schedule).

export type ScheduleKind = 'constant' | 'step' | 'multistep' | 'cosine';
export type Granularity = 'epoch' | 'iter';

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** When the lr changes: once per epoch (PyTorch's usual scheduler.step() per epoch) or per iteration. */
  granularity: Granularity;
  /** step: decay period, in epochs. */
  stepSize?: number;
  /** multistep: epochs (0-based, as MultiStepLR counts) at which the lr is multiplied by gamma. */
  milestones?: number[];
  /** step/multistep decay factor. Default 0.1. */
  gamma?: number;
  /** cosine: final lr (absolute). Default 0. */
  etaMin?: number;
  /** Linear warm-up length, in `warmupUnit`. Default 0 (none). */
  warmup?: number;
  /** 'epoch' (default) or 'iter'; 'iter' needs 'iter' granularity. */
  warmupUnit?: Granularity;
  /** LinearLR start_factor: the first warm-up lr is base·f0. Default 0.01. */
  warmupStartFactor?: number;
}

export interface RunLength {
  epochs: number;
  itersPerEpoch: number;
}

export interface Position {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based batch index within the epoch. */
  iter: number;
}

function need(cond: boolean, msg: string): void {
  if (!cond) throw new Error(`schedule: ${msg}`);
}

/** Check a config against the run length; throws with the offending field named. */
export function validateSchedule(cfg: ScheduleConfig, run: RunLength): void {
  need(
    ['constant', 'step', 'multistep', 'cosine'].includes(cfg.kind),
    `kind '${cfg.kind}' is not one of constant, step, multistep, cosine`,
  );
  need(cfg.granularity === 'epoch' || cfg.granularity === 'iter', `granularity '${cfg.granularity}' must be 'epoch' or 'iter'`);
  need(Number.isInteger(run.epochs) && run.epochs > 0, `epochs must be a positive integer, got ${run.epochs}`);
  need(Number.isInteger(run.itersPerEpoch) && run.itersPerEpoch > 0, `itersPerEpoch must be a positive integer, got ${run.itersPerEpoch}`);
  const gamma = cfg.gamma ?? 0.1;
  need(gamma > 0, `gamma must be > 0, got ${gamma}`);
  if (cfg.kind === 'step') need(cfg.stepSize !== undefined && cfg.stepSize > 0, `stepSize must be > 0 for 'step', got ${cfg.stepSize}`);
  if (cfg.kind === 'multistep') {
    const m = cfg.milestones;
    need(
      Array.isArray(m) && m.every((x, i) => Number.isFinite(x) && x >= 0 && (i === 0 || x > m[i - 1])),
      `milestones must be increasing non-negative numbers, got ${JSON.stringify(m)}`,
    );
  }
  const warm = cfg.warmup ?? 0;
  need(warm >= 0, `warmup must be >= 0, got ${warm}`);
  const unit = cfg.warmupUnit ?? 'epoch';
  need(unit === 'epoch' || unit === 'iter', `warmupUnit '${unit}' must be 'epoch' or 'iter'`);
  need(
    !(unit === 'iter' && cfg.granularity === 'epoch' && warm > 0),
    "warmupUnit 'iter' needs granularity 'iter' (a per-epoch schedule cannot change the lr inside an epoch)",
  );
  const f0 = cfg.warmupStartFactor ?? 0.01;
  need(f0 > 0 && f0 <= 1, `warmupStartFactor must be in (0, 1], got ${f0}`);
  const { total, warmTicks } = ticks(cfg, run);
  if (cfg.kind === 'cosine')
    need(
      warmTicks < total,
      `warm-up (${warm} ${unit}s) must be shorter than the run (${run.epochs} epochs × ${run.itersPerEpoch} iterations)`,
    );
}

function ticks(cfg: ScheduleConfig, run: RunLength): { perEpoch: number; total: number; warmTicks: number } {
  const perEpoch = cfg.granularity === 'iter' ? run.itersPerEpoch : 1;
  const warm = cfg.warmup ?? 0;
  const warmTicks = (cfg.warmupUnit ?? 'epoch') === 'iter' ? warm : warm * perEpoch;
  return { perEpoch, total: run.epochs * perEpoch, warmTicks };
}

/** Learning rate at a position (the lr used by the update made at that batch). */
export function lrAt(cfg: ScheduleConfig, baseLr: number, pos: Position, run: RunLength): number {
  validateSchedule(cfg, run);
  const { perEpoch, total, warmTicks } = ticks(cfg, run);
  const t = cfg.granularity === 'iter' ? pos.epoch * run.itersPerEpoch + pos.iter : pos.epoch;
  const gamma = cfg.gamma ?? 0.1;
  const f0 = cfg.warmupStartFactor ?? 0.01;
  const warmFactor = t < warmTicks ? f0 + ((1 - f0) * t) / warmTicks : 1;
  switch (cfg.kind) {
    case 'constant':
      return baseLr * warmFactor;
    case 'step':
      return baseLr * Math.pow(gamma, Math.floor(t / (cfg.stepSize! * perEpoch))) * warmFactor;
    case 'multistep': {
      const passed = cfg.milestones!.filter((m) => m * perEpoch <= t).length;
      return baseLr * Math.pow(gamma, passed) * warmFactor;
    }
    case 'cosine': {
      if (t < warmTicks) return baseLr * warmFactor;
      const etaMin = cfg.etaMin ?? 0;
      return etaMin + ((baseLr - etaMin) * (1 + Math.cos((Math.PI * (t - warmTicks)) / (total - warmTicks)))) / 2;
    }
  }
}

/** Convenience: a schedule bound to its base lr and run length. */
export class LrSchedule {
  constructor(
    readonly cfg: ScheduleConfig,
    readonly baseLr: number,
    readonly run: RunLength,
  ) {
    validateSchedule(cfg, run);
  }
  at(pos: Position): number {
    return lrAt(this.cfg, this.baseLr, pos, this.run);
  }
}
