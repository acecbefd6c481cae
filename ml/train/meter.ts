// Epoch summaries weighted by samples (the original averaged per-batch means, so a short last
// batch counted as much as a full one).

export class MeanMeter {
  private sum = 0;
  private count = 0;

  /** Add a batch mean `value` computed over `n` samples. */
  add(value: number, n = 1): void {
    if (!(n >= 0)) throw new Error(`MeanMeter.add: sample count must be >= 0, got ${n}`);
    this.sum += value * n;
    this.count += n;
  }

  get mean(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }

  get samples(): number {
    return this.count;
  }

  reset(): void {
    this.sum = 0;
    this.count = 0;
  }

  state(): { sum: number; count: number } {
    return { sum: this.sum, count: this.count };
  }

  /** Restore mid-epoch sums from a checkpoint. */
  load(s: { sum: number; count: number }): void {
    this.sum = s.sum;
    this.count = s.count;
  }
}
