// Text helpers for progress: bar, rate, ETA, durations.

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

export function bar(done: number, total: number, width = 20): string {
  const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const full = Math.round(f * width);
  return '█'.repeat(full) + '░'.repeat(width - full);
}

/** Tracks one instance's progress to derive a rate and an ETA from the first sample on. */
export class RateTracker {
  private t0 = 0;
  private d0 = 0;
  done = 0;
  total?: number;
  unit?: string;
  message?: string;

  update(p: { done: number; total?: number; unit?: string; message?: string }, t = Date.now()): void {
    if (!this.t0 || p.done < this.done) {
      // First sample (or a reset, e.g. a resumed stage calling set()): rate counts from here.
      this.t0 = t;
      this.d0 = p.done;
    }
    this.done = p.done;
    if (p.total !== undefined) this.total = p.total;
    if (p.unit !== undefined) this.unit = p.unit;
    if (p.message !== undefined) this.message = p.message;
    this.now = t;
  }
  private now = 0;

  /** Time of the last sample (ms since epoch). */
  get lastAt(): number {
    return this.now;
  }

  /** ETA as seen at `at` (a status read some time after the last sample). */
  etaAt(at: number): number | undefined {
    const eta = this.etaMs();
    return eta === undefined ? undefined : Math.max(0, eta - Math.max(0, at - this.now));
  }

  /** Units per second since the first sample, undefined until measurable. */
  rate(): number | undefined {
    const dt = (this.now - this.t0) / 1000;
    return dt > 0 && this.done > this.d0 ? (this.done - this.d0) / dt : undefined;
  }

  etaMs(): number | undefined {
    const r = this.rate();
    if (!r || this.total === undefined) return undefined;
    return (Math.max(0, this.total - this.done) / r) * 1000;
  }

  text(withBar = true, at?: number): string {
    const unit = this.unit ? ` ${this.unit}` : '';
    const parts: string[] = [];
    if (this.total !== undefined && this.total > 0) {
      const pct = Math.floor((100 * this.done) / this.total);
      parts.push(`${withBar ? bar(this.done, this.total) + ' ' : ''}${this.done}/${this.total}${unit} (${pct}%)`);
    } else if (this.done) parts.push(`${this.done}${unit}`);
    const r = this.rate();
    if (r !== undefined) parts.push(`${r >= 10 ? r.toFixed(0) : r.toFixed(2)}${unit || ' units'}/s`);
    const eta = at === undefined ? this.etaMs() : this.etaAt(at);
    if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
    if (this.message) parts.push(this.message);
    return parts.join(' · ');
  }
}
