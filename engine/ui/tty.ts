// Interactive renderer: one listr2 task per stage instance, grouped by variant, with a progress
// bar, rate and ETA. listr2 is imported only when something actually executes, so a fully cached
// rerun does not pay for loading it.
import type { RunEvent, InstanceSummary } from '../run/events.js';
import { RateTracker, formatDuration } from './format.js';
import { PlainRenderer } from './plain.js';
import type { Renderer } from './renderer.js';

/** Above this many stage instances the listr2 view gives way to plain lines. */
const MAX_TASKS = 60;

interface TaskHandle {
  title: string;
  output: string;
  skip(msg?: string): void;
}

interface Slot {
  info: InstanceSummary;
  state: 'pending' | 'waiting' | 'running' | 'cached' | 'done' | 'failed' | 'skipped';
  detail?: string;
  rate: RateTracker;
  task?: TaskHandle;
  settle?: () => void;
  fail?: (e: Error) => void;
}

export class TtyRenderer implements Renderer {
  private slots = new Map<string, Slot>();
  private order: InstanceSummary[] = [];
  private started: Promise<void> | undefined;
  private summary: string[] = [];
  private plain: PlainRenderer;
  private delegate: PlainRenderer | undefined;

  /** `silent` hides the listr2 output (tests drive the task logic without a terminal). */
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly opts: { silent?: boolean } = {},
  ) {
    this.plain = new PlainRenderer(out, true);
  }

  private label(i: InstanceSummary): string {
    return i.stage;
  }

  private refresh(s: Slot): void {
    if (!s.task) return;
    const base = this.label(s.info);
    if (s.state === 'cached') s.task.title = `${base} (cached)`;
    else if (s.state === 'waiting') s.task.title = `${base} (waiting for another run)`;
    else if (s.state === 'pending') s.task.title = `${base} (pending)`;
    else s.task.title = base;
    if (s.state === 'running') s.task.output = s.rate.text(true) || 'running';
    const finished = s.state === 'cached' || s.state === 'done';
    if (finished && s.settle) s.settle();
    if (s.state === 'skipped') {
      s.task.skip(`${base} (skipped: ${s.detail ?? ''})`);
      s.settle?.();
    }
    if (s.state === 'failed' && s.fail) s.fail(new Error(`${base}: ${s.detail ?? 'failed'}`));
  }

  private async start(): Promise<void> {
    const { Listr } = await import('listr2');
    const groups = new Map<string, InstanceSummary[]>();
    for (const i of this.order) {
      const g = i.alias || 'shared';
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g)!.push(i);
    }
    const sub = (list: InstanceSummary[]) =>
      list.map((info) => ({
        title: this.label(info),
        task: (_ctx: unknown, task: TaskHandle) =>
          new Promise<void>((settle, fail) => {
            const s = this.slots.get(info.id)!;
            s.task = task;
            s.settle = settle;
            s.fail = fail;
            this.refresh(s);
          }),
      }));
    const top = [...groups.entries()].map(([g, list]) => ({
      title: g === 'shared' ? 'shared stages' : `variant ${g}`,
      task: (_ctx: unknown, task: { newListr: (t: unknown[], o: object) => unknown }) =>
        task.newListr(sub(list), { concurrent: true, exitOnError: false }),
    }));
    const listr = new Listr(top as never, {
      concurrent: true,
      exitOnError: false,
      registerSignalListeners: false,
      silentRendererCondition: this.opts.silent === true,
      rendererOptions: { collapseSubtasks: false, collapseSkips: false, showErrorMessage: true },
    });
    await listr.run().catch(() => undefined);
  }

  onEvent(e: RunEvent): void {
    if (this.delegate) {
      this.delegate.onEvent(e);
      return;
    }
    if (e.type === 'run-start' && e.instances.length > MAX_TASKS) {
      // A task list of a big sweep would not fit a terminal: plain lines scale.
      this.delegate = new PlainRenderer(this.out, false);
      this.delegate.onEvent(e);
      return;
    }
    if (e.type === 'run-start') {
      this.order = e.instances;
      for (const i of e.instances) this.slots.set(i.id, { info: i, state: 'pending', rate: new RateTracker() });
      this.plain.onEvent(e);
      return;
    }
    if (e.type === 'run-end') {
      const c = e.counts;
      this.summary.push(
        `${e.status}: ${c.executed} executed, ${c.cached} cached, ${c.failed} failed, ${c.interrupted ? `${c.interrupted} interrupted, ` : ''}${c.skipped} skipped — ${e.runDir}`,
      );
      return;
    }
    const s = this.slots.get(e.id);
    if (!s) return;
    switch (e.type) {
      case 'instance-cached':
        s.state = 'cached';
        break;
      case 'instance-waiting':
        s.state = 'waiting';
        break;
      case 'instance-start':
        s.state = 'running';
        break;
      case 'progress':
        s.rate.update(e, Date.parse(e.t));
        break;
      case 'instance-done':
        s.state = 'done';
        s.detail = formatDuration(e.ms);
        break;
      case 'instance-failed':
        s.state = 'failed';
        s.detail = e.error.split('\n')[0];
        break;
      case 'instance-interrupted':
        s.state = 'skipped';
        s.detail = 'interrupted: the same command resumes it';
        break;
      case 'instance-damaged':
        // Said once, above the task list: the instance then runs like any other.
        this.out.write(
          `ca-pipe: the cached entry of ${e.id} changed after commit (${e.why.split('\n')[0]}); ${e.movedTo ? `moved to ${e.movedTo}, ` : ''}recomputing\n`,
        );
        break;
      case 'instance-skipped':
        s.state = 'skipped';
        s.detail = e.reason;
        break;
    }
    if (!this.started && (s.state === 'running' || s.state === 'waiting' || s.state === 'failed')) {
      this.started = this.start();
    }
    this.refresh(s);
  }

  async finish(): Promise<void> {
    if (this.started) await this.started;
    for (const l of this.summary) this.out.write(l + '\n');
  }
}
