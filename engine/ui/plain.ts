// Plain line renderer for logs, CI and pipes: one line per state change, progress every few seconds.
import type { RunEvent } from '../run/events.js';
import { RateTracker, formatDuration } from './format.js';
import type { Renderer } from './renderer.js';

export class PlainRenderer implements Renderer {
  private names = new Map<string, string>();
  private rates = new Map<string, RateTracker>();
  private lastPrint = new Map<string, number>();
  private manyInstances = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly quiet = false,
    private readonly progressEveryMs = 5000,
  ) {}

  private line(s: string): void {
    this.out.write(s + '\n');
  }
  private name(id: string): string {
    return this.names.get(id) ?? id;
  }

  onEvent(e: RunEvent): void {
    switch (e.type) {
      case 'run-start':
        for (const i of e.instances) this.names.set(i.id, i.alias ? `${i.stage} [${i.alias}]` : i.stage);
        // Big sweeps: cache hits only show up in the summary counts.
        this.manyInstances = e.instances.length > 60;
        if (!this.quiet) this.line(`run ${e.runId} of ${e.experiment}: ${e.instances.length} stage instance(s)`);
        break;
      case 'instance-cached':
        if (!this.quiet && !this.manyInstances)
          this.line(`  cached    ${this.name(e.id)}${e.by === 'other-process' ? ' (computed by another run)' : ''}`);
        break;
      case 'instance-waiting':
        if (!this.quiet)
          this.line(`  waiting   ${this.name(e.id)} (locked by ${e.owner ? `pid ${e.owner.pid} on ${e.owner.host}` : 'another run'})`);
        break;
      case 'instance-start':
        if (!this.quiet) this.line(`  start     ${this.name(e.id)}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
        this.rates.set(e.id, new RateTracker());
        break;
      case 'progress': {
        const r = this.rates.get(e.id) ?? new RateTracker();
        this.rates.set(e.id, r);
        r.update(e, Date.parse(e.t));
        const last = this.lastPrint.get(e.id) ?? 0;
        if (!this.quiet && Date.now() - last >= this.progressEveryMs) {
          this.lastPrint.set(e.id, Date.now());
          this.line(`  progress  ${this.name(e.id)}: ${r.text(false)}`);
        }
        break;
      }
      case 'instance-done':
        if (!this.quiet) this.line(`  done      ${this.name(e.id)} in ${formatDuration(e.ms)}`);
        break;
      case 'instance-failed':
        this.line(`  FAILED    ${this.name(e.id)}: ${e.error.split('\n').join('\n            ')}`);
        if (e.log) this.line(`            log: ${e.log}`);
        break;
      case 'instance-interrupted':
        this.line(`  interrupted ${this.name(e.id)} (the same command resumes it)`);
        break;
      case 'instance-damaged':
        this.line(
          `  damaged   ${this.name(e.id)}: its cached entry changed after commit (${e.why.split('\n')[0]}); ${e.movedTo ? `moved to ${e.movedTo}, ` : ''}recomputing`,
        );
        break;
      case 'instance-skipped':
        if (!this.quiet) this.line(`  skipped   ${this.name(e.id)} (${e.reason})`);
        break;
      case 'run-end': {
        const c = e.counts;
        this.line(
          `${e.status}: ${c.executed} executed, ${c.cached} cached, ${c.failed} failed, ${c.interrupted ? `${c.interrupted} interrupted, ` : ''}${c.skipped} skipped — ${e.runDir}`,
        );
        break;
      }
    }
  }

  async finish(): Promise<void> {}
}
