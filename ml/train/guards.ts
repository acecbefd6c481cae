// Early, explanatory failure when training diverges.

export class NonFiniteLossError extends Error {
  constructor(
    message: string,
    readonly iteration: number,
    readonly value: number,
  ) {
    super(message);
    this.name = 'NonFiniteLossError';
  }
}

export interface GuardContext {
  /** Global iteration (0-based). */
  iteration: number;
  epoch?: number;
  batch?: number;
  /** Learning rate of the step that produced the value. */
  lr?: number;
  /** What was measured, e.g. 'loss' or 'gradient norm'. Default 'loss'. */
  what?: string;
}

/** Throws NonFiniteLossError if `value` is NaN or ±Infinity; otherwise returns it. */
export function assertFinite(value: number, ctx: GuardContext): number {
  if (Number.isFinite(value)) return value;
  const what = ctx.what ?? 'loss';
  const where = [`iteration ${ctx.iteration}`];
  if (ctx.epoch !== undefined) where.push(`epoch ${ctx.epoch}`);
  if (ctx.batch !== undefined) where.push(`batch ${ctx.batch}`);
  const lr = ctx.lr !== undefined ? `, last lr ${ctx.lr.toPrecision(4)}` : '';
  const hint = Number.isNaN(value)
    ? 'check the inputs and labels for NaN/Inf, then try a lower learning rate or gradient clipping (clipGradNorm)'
    : 'training diverged: lower the learning rate, add warm-up, or enable gradient clipping (clipGradNorm)';
  throw new NonFiniteLossError(`${what} is ${value} at ${where.join(', ')}${lr}: ${hint}`, ctx.iteration, value);
}
