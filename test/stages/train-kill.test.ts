// Kill-and-resume through the real CLI (issue #5's acceptance): `ca-pipe run` in a child process is
// SIGKILLed at seeded-random batches, twice in the scratch pretraining and twice in the frozen
// CA-Stream training, restarted each time, and must end with the same outputs, byte for byte
// (weights, metrics, TensorBoard file, summary), as an uninterrupted run of the same experiment;
// hence also with the same key for the CA stage (its init input's digest is the pretraining's).
//
// One kill of each stage fires as soon as a new checkpoint appears (landing right after it), the
// other at a step between two checkpoints (so the restart redoes steps); the frozen stage
// checkpoints only every 4 steps, not at epoch ends, so a kill there can also fall after an
// epoch's validation and best-weights write that the restart must redo.
// The seed is printed; rerun a failure with CA_PIPE_KILL_SEED=<seed>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cliCommand } from '../../engine/run/child.js';
import { Rng } from '../../ml/data/rng.js';
import { readJsonl } from '../../ml/train/jsonl.js';
import { sha256File, tmp } from './train-helpers.js';

const SEED = Number(process.env.CA_PIPE_KILL_SEED ?? Date.now() % 1_000_000);
const CKPT_EVERY = 4;
const PER_EPOCH = 9; // 54 train images (72, a quarter held out) in batches of 6
const EPOCHS = 3;
const STEPS = EPOCHS * PER_EPOCH;

// Compiled (npm test), images are decoded by the default worker threads. From TypeScript sources
// the decoding threads resolve tsx against the cwd (a temp dir here) and fail, so workers: 0;
// workers do not affect results.
const WORKERS = import.meta.url.endsWith('.ts') ? ', workers: 0' : '';
const EXPERIMENT = `name: kill
stages:
  data:
    kind: index
    params:
      source: synthetic
      synthetic: { classes: 6, per_class: 12, size: 24, seed: 3 }
      split: { fraction: 0.25, seed: 0 }
  pretrain:
    kind: train
    needs: { data: data }
    params:
      { arch: resnet-mini, head: gap, mode: scratch, epochs: ${EPOCHS}, batch_size: 6, input_size: 24, resize: 24,
        recipe: vit, lr: 0.003, warmup_epochs: 1, ema_every: 2, augment: true, crop_scale: [0.5, 1],
        checkpoint_every_iters: ${CKPT_EVERY}, log_every: 1${WORKERS} }
  ca:
    kind: train
    needs: { data: data, init: pretrain }
    params:
      { arch: resnet-mini, head: ca-stream, mode: frozen, epochs: ${EPOCHS}, batch_size: 6, input_size: 24, resize: 24,
        augment: false, optimizer: adamw, lr: 0.01, dropout: 0.1, schedule: cosine, schedule_per: iter,
        checkpoint_every_iters: ${CKPT_EVERY}, checkpoint_every_epochs: 0, log_every: 1${WORKERS} }
`;

interface Launch {
  pid: number;
  output(): string;
  exited: boolean;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<number>();

function launch(dir: string): Launch {
  const { file, args } = cliCommand();
  // Own process group, so the kill reaches anything the CLI starts.
  const child = spawn(file, [...args, 'run', 'kill.yaml', '--quiet'], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  live.add(child.pid!);
  const l: Launch = {
    pid: child.pid!,
    output: () => out.slice(-3000),
    exited: false,
    done: new Promise((res) =>
      child.on('close', (code, signal) => {
        l.exited = true;
        live.delete(child.pid!);
        res({ code, signal });
      }),
    ),
  };
  return l;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Step of the last per-iteration record in a scratch dir's metrics log (0 when none yet). */
function lastStep(scratch: string): number {
  const file = join(scratch, 'metrics.jsonl');
  if (!existsSync(file)) return 0;
  try {
    const iters = readJsonl(file).filter((r) => r.type === 'iter');
    return iters.length ? Number(iters.at(-1)!.step) : 0;
  } catch {
    return 0; // replaced by a restarted run while being read
  }
}

/** Iteration of the newest complete checkpoint (0 when none). */
function newestCheckpoint(scratch: string): number {
  const dir = join(scratch, 'checkpoints');
  if (!existsSync(dir)) return 0;
  const its = readdirSync(dir)
    .map((f) => /^ckpt-(\d{12})\.safetensors$/.exec(f))
    .filter((m) => m !== null)
    .map((m) => Number(m![1]));
  return its.length ? Math.max(...its) : 0;
}

type Trigger = { after: 'checkpoint'; at: number } | { after: 'step'; at: number };

interface Landing {
  stage: string;
  trigger: Trigger;
  /** Last step logged before the process died, and the checkpoint a restart must resume from. */
  step: number;
  checkpoint: number;
}

/** Relative path → sha256 of every file under `dir`. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true }))
    if (e.isFile()) out[relative(dir, join(e.parentPath, e.name))] = sha256File(join(e.parentPath, e.name));
  return out;
}

/** Newest run directory of the experiment (run ids sort by start time). */
function newestRunDir(dir: string): string {
  const runs = join(dir, 'runs', 'kill');
  const ids = readdirSync(runs)
    .filter((d) => /^\d{8}-/.test(d))
    .sort();
  return join(runs, ids.at(-1)!);
}

test(
  'SIGKILL twice in scratch and twice in frozen training: the restarted runs end with the uninterrupted outputs, byte for byte',
  { timeout: 240_000 },
  async (t) => {
    const dirs: string[] = [];
    let passed = false;
    t.after(() => {
      for (const pid of live) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      // Kept after a failure, for a look at the stores and logs.
      if (passed) for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    t.diagnostic(`seed ${SEED} (rerun with CA_PIPE_KILL_SEED=${SEED})`);
    const rng = new Rng(SEED, 0x6b1);
    const pick = (values: number[], what: string): number => {
      assert.ok(values.length > 0, `seed ${SEED}: no step left for ${what} (an earlier kill landed too late)`);
      return values[rng.int(values.length)];
    };
    const range = (lo: number, hi: number) => Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => lo + i);

    const straight = tmp('kill-straight');
    dirs.push(straight);
    writeFileSync(join(straight, 'kill.yaml'), EXPERIMENT);
    const ref = launch(straight);
    const refEnd = await ref.done;
    assert.equal(refEnd.code, 0, `uninterrupted run failed:\n${ref.output()}`);
    const keyIn = (d: string, id: string): string => {
      const run = JSON.parse(readFileSync(join(d, 'runs', 'kill', 'latest', 'run.json'), 'utf8')) as {
        instances: Array<{ id: string; key: string }>;
      };
      return run.instances.find((i) => i.id === id)!.key;
    };
    /** Resume history of a committed entry: the provenance the engine stored with it. */
    const resumedFromIn = (d: string, id: string): unknown => {
      const meta = JSON.parse(readFileSync(join(d, 'runs', '.store', 'entries', keyIn(d, id), 'meta.json'), 'utf8')) as {
        provenance?: { train?: { resumed_from_step?: unknown } };
      };
      return meta.provenance?.train?.resumed_from_step;
    };
    const pretrainKey = keyIn(straight, 'pretrain');

    const dir = tmp('kill-resumed');
    dirs.push(dir);
    writeFileSync(join(dir, 'kill.yaml'), EXPERIMENT);
    const store = join(dir, 'runs', '.store');
    const scratchOf = (stage: string): string | null => {
      if (stage === 'pretrain') return join(store, 'scratch', pretrainKey);
      const others = existsSync(join(store, 'scratch'))
        ? readdirSync(join(store, 'scratch'), { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== pretrainKey)
        : [];
      return others.length === 1 ? join(store, 'scratch', others[0].name) : null;
    };
    const dataKey = keyIn(straight, 'data');
    const committed = (stage: string): boolean => {
      const entries = existsSync(join(store, 'entries')) ? readdirSync(join(store, 'entries')) : [];
      return stage === 'pretrain' ? entries.includes(pretrainKey) : entries.some((k) => k !== dataKey && k !== pretrainKey);
    };

    const landings: Landing[] = [];
    let previous: Landing | null = null;
    /** Starts a run (resuming `previous`), kills it once `trigger` is met in `stage`. */
    async function runAndKill(stage: string, trigger: Trigger): Promise<Landing> {
      const run = launch(dir);
      const t0 = Date.now();
      let scratch: string | null = null;
      const met = () =>
        (scratch ??= scratchOf(stage)) !== null &&
        (trigger.after === 'checkpoint' ? newestCheckpoint(scratch) >= trigger.at : lastStep(scratch) >= trigger.at);
      while (!met()) {
        assert.ok(!run.exited, `seed ${SEED}: the run ended before ${stage} reached ${JSON.stringify(trigger)}:\n${run.output()}`);
        assert.ok(
          Date.now() - t0 < 90_000,
          `seed ${SEED}: ${stage} did not reach ${JSON.stringify(trigger)} in 90 s (scratch ${scratch}):\n${run.output()}`,
        );
        await sleep(3);
      }
      process.kill(-run.pid, 'SIGKILL');
      const end = await run.done;
      assert.equal(end.signal, 'SIGKILL', run.output());
      const landing: Landing = { stage, trigger, step: lastStep(scratch!), checkpoint: newestCheckpoint(scratch!) };
      t.diagnostic(
        `killed ${stage} on ${trigger.after} ${trigger.at} after ${((Date.now() - t0) / 1000).toFixed(1)} s: last logged step ${landing.step}, newest checkpoint ${landing.checkpoint}`,
      );
      assert.ok(
        !committed(stage),
        `seed ${SEED}: ${stage} finished before the kill landed (${JSON.stringify(landing)}); nothing was interrupted`,
      );
      assert.ok(landing.checkpoint > 0, `seed ${SEED}: no checkpoint before the kill (${JSON.stringify(landing)})`);
      checkResumedFrom(previous);
      landings.push(landing);
      previous = landing;
      return landing;
    }
    /** The run that just ended must have resumed `from` (its stage log names the checkpoint). */
    function checkResumedFrom(from: Landing | null): void {
      if (!from) return;
      const log = readFileSync(join(newestRunDir(dir), 'logs', `${from.stage}.log`), 'utf8');
      const ckpt = `ckpt-${String(from.checkpoint).padStart(12, '0')}.safetensors`;
      assert.match(
        log,
        new RegExp(`resuming from \\S*${ckpt}`),
        `seed ${SEED}: the restart after ${JSON.stringify(from)} did not resume from ${ckpt}:\n${log}`,
      );
    }

    // Scratch pretraining: checkpoints every 4 steps and at epoch ends (9, 18).
    const epochEnd = (s: number) => s % PER_EPOCH === 0;
    const k1 = await runAndKill('pretrain', { after: 'checkpoint', at: pick([4, 8, 12], 'kill 1') });
    // Triggers stay well before the last step: under load the test may look a few steps late.
    const between1 = range(k1.step + 2, STEPS - 7).filter((s) => s % CKPT_EVERY !== 0 && !epochEnd(s));
    await runAndKill('pretrain', { after: 'step', at: pick(between1, 'kill 2') });
    // Frozen CA-Stream training: checkpoints every 4 steps only; the first epoch ends at step 9.
    const k3 = await runAndKill('ca', { after: 'step', at: pick([5, 6, 7, 9, 10, 11], 'kill 3') });
    await runAndKill('ca', {
      after: 'checkpoint',
      at: pick(
        range(k3.step + 1, 16).filter((s) => s % CKPT_EVERY === 0),
        'kill 4',
      ),
    });

    const last = launch(dir);
    const lastEnd = await last.done;
    assert.equal(lastEnd.code, 0, `seed ${SEED}: the final restart failed:\n${last.output()}`);
    checkResumedFrom(previous);
    assert.ok(
      landings.some((l) => l.step > l.checkpoint),
      `seed ${SEED}: no kill fell between checkpoints: ${JSON.stringify(landings)}`,
    );

    for (const stage of ['pretrain', 'ca']) {
      const where = `seed ${SEED}, ${stage}, kills ${JSON.stringify(landings.filter((l) => l.stage === stage))}`;
      // Equal keys: for ca, the resumed pretraining's output digest is the uninterrupted one's.
      assert.equal(keyIn(dir, stage), keyIn(straight, stage), `key: ${where}`);
      const mine = join(store, 'entries', keyIn(dir, stage), 'out');
      const theirs = join(straight, 'runs', '.store', 'entries', keyIn(straight, stage), 'out');
      for (const f of ['final.safetensors', 'best.safetensors'])
        assert.equal(sha256File(join(mine, f)), sha256File(join(theirs, f)), `${f}: ${where}`);
      // Every step logged once, with the uninterrupted run's loss; epochs with its validation results.
      const steps = (d: string) =>
        readJsonl(join(d, 'metrics.jsonl')).map((r) =>
          r.type === 'iter' ? `${r.step}:${r.loss}` : `epoch ${r.epoch}:${r.val_loss}:${r.val_acc}`,
        );
      assert.deepEqual(steps(mine), steps(theirs), `metrics.jsonl: ${where}`);
      // The rest of the tree too (metrics.jsonl above first, for a readable diff when it differs).
      assert.deepEqual(tree(mine), tree(theirs), `output tree: ${where}`);
      // Resume history is provenance, stored with the entry, outside its output tree.
      assert.equal(resumedFromIn(dir, stage), landings.filter((l) => l.stage === stage).at(-1)!.checkpoint, `provenance: ${where}`);
      assert.equal(resumedFromIn(straight, stage), null, `uninterrupted provenance: ${where}`);
    }
    passed = true;
  },
);
