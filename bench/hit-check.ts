// Overhead of checking cache hits (issue 12, item 3; budget < 50 ms on the cached quickstart rerun).
//
// A cached rerun looks up every stage instance; the cheap check adds one stat per committed file.
// The quickstart's store holds ~9,650 files, 9,605 of them in the data stage (4,800 images and
// 4,800 masks): the check's cost is set by that count, not by file sizes. This bench builds a store
// with exactly that structure — the quickstart file with the full dataset (per_class 800, the same
// split) and every other stage made tiny (1 % of the training set, one epoch, two methods) — unless
// given one, then times, per rerun, the 8 lookups as before (manifest read) against the checked
// lookups (manifest + stat.json + one stat per file), warm (median of 25 passes in this process)
// and cold (one pass in each of 7 fresh processes, as a rerun does it), and the full rehash of
// `--verify-hits`.
//
//   npm run bench:hit-check                        # builds runs/.bench-hit-check (minutes, once)
//   npm run bench:hit-check -- --store S --runs R  # an existing quickstart store and its runs dir
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../engine/store/index.js';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const SAME_STRUCTURE = [
  'pretrain.epochs=1',
  'pretrain.fraction=0.01',
  'pretrain.batch_size=16',
  'ca.epochs=1',
  'ca.fraction=0.01',
  'ca.batch_size=16',
  'saliency_gap.methods=[gradcam,random]',
  'saliency_ca.methods=[ca-attention,gradcam]',
  'saliency_gap.limit=12',
  'saliency_ca.limit=12',
].flatMap((s) => ['-s', s]);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const base = join(REPO, 'runs', '.bench-hit-check');
  const storeDir = resolve(arg('--store') ?? join(base, 'store'));
  const runsDir = resolve(arg('--runs') ?? join(base, 'runs'));
  if (!existsSync(join(runsDir, 'quickstart', 'latest', 'run.json'))) {
    process.stderr.write(`building a quickstart-structured store in ${storeDir} (once)…\n`);
    const r = spawnSync(
      process.execPath,
      [
        join(REPO, 'bin', 'ca-pipe.js'),
        'run',
        join(REPO, 'experiments', 'quickstart.yaml'),
        ...SAME_STRUCTURE,
        '--store',
        storeDir,
        '--runs',
        runsDir,
        '--quiet',
      ],
      { stdio: 'inherit' },
    );
    if (r.status !== 0) throw new Error(`building the store failed (exit ${r.status})`);
  }
  const rec = JSON.parse(readFileSync(join(runsDir, 'quickstart', 'latest', 'run.json'), 'utf8')) as {
    instances: Array<{ id: string; key: string }>;
  };
  const keys = rec.instances.map((i) => i.key);
  const store = await Store.openExisting(storeDir);
  let files = 0;
  for (const k of keys) files += (await store.manifest(k))!.files.length;

  // Wall time, and this process's CPU time (user + system): on a shared machine the wall time
  // mostly measures the wait for a core, the CPU time what the check itself costs.
  const time = async (fn: (k: string) => Promise<unknown>): Promise<{ wall: number; cpu: number }> => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (const k of keys) {
      const r = await fn(k);
      if (!r || (typeof r === 'object' && 'damaged' in r && r.damaged)) throw new Error(`${k}: not a clean hit`);
    }
    const c = process.cpuUsage(c0);
    return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
  };
  // Cold: one pass in a fresh process, as a cached rerun does it (nothing warmed up yet).
  const onePass = arg('--one-pass');
  if (onePass) {
    const r = await time((k) => (onePass === 'plain' ? store.lookup(k) : store.checkedLookup(k, 'cheap')));
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const cold = (mode: string) => {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--store', storeDir, '--runs', runsDir, '--one-pass', mode], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as { wall: number; cpu: number };
  };
  const coldPlain: Array<{ wall: number; cpu: number }> = [];
  const coldCheap: Array<{ wall: number; cpu: number }> = [];
  for (let i = 0; i < 7; i++) {
    coldPlain.push(cold('plain'));
    coldCheap.push(cold('cheap'));
  }
  const plain: Array<{ wall: number; cpu: number }> = [];
  const cheap: Array<{ wall: number; cpu: number }> = [];
  for (let i = 0; i < 25; i++) {
    plain.push(await time((k) => store.lookup(k)));
    cheap.push(await time((k) => store.checkedLookup(k, 'cheap')));
  }
  const full = await time((k) => store.checkedLookup(k, 'full'));
  const m = (xs: Array<{ wall: number; cpu: number }>, f: 'wall' | 'cpu') => median(xs.map((x) => x[f]));
  const out = {
    store: storeDir,
    instances: keys.length,
    files,
    repetitions: plain.length,
    lookup_ms: { wall: +m(plain, 'wall').toFixed(1), cpu: +m(plain, 'cpu').toFixed(1) },
    checked_lookup_ms: { wall: +m(cheap, 'wall').toFixed(1), cpu: +m(cheap, 'cpu').toFixed(1) },
    cheap_check_overhead_ms: {
      wall: +(m(cheap, 'wall') - m(plain, 'wall')).toFixed(1),
      cpu: +(m(cheap, 'cpu') - m(plain, 'cpu')).toFixed(1),
    },
    cold_fresh_process_overhead_ms: {
      wall: +(m(coldCheap, 'wall') - m(coldPlain, 'wall')).toFixed(1),
      cpu: +(m(coldCheap, 'cpu') - m(coldPlain, 'cpu')).toFixed(1),
      runs: coldPlain.length,
    },
    verify_hits_ms: { wall: +full.wall.toFixed(0), cpu: +full.cpu.toFixed(0) },
    load: (await import('node:os')).loadavg().map((x) => +x.toFixed(2)),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

await main();
