import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { RateTracker, bar, formatDuration, chooseMode, createRenderer } from '../../engine/ui/index.js';
import type { RunEvent } from '../../engine/run/index.js';

test('rate and ETA from progress samples', () => {
  const r = new RateTracker();
  r.update({ done: 0, total: 100, unit: 'img' }, 1000);
  r.update({ done: 10 }, 3000);
  // 10 images in 2 s → 5 img/s; 90 left → 18 s.
  assert.equal(r.rate(), 5);
  assert.equal(r.etaMs(), 18_000);
  assert.equal(r.text(false), '10/100 img (10%) · 5.00 img/s · ETA 18.0s');
  assert.equal(bar(1, 4, 8), '██░░░░░░');
  assert.equal(formatDuration(65_000), '1m05s');
  assert.equal(formatDuration(3_725_000), '1h02m');
  // A resumed stage jumping back (set) restarts the rate window.
  r.update({ done: 4 }, 4000);
  assert.equal(r.rate(), undefined);
});

test('renderer choice: --json wins, --quiet next, else TTY or plain by the stream', () => {
  const tty = { isTTY: true } as NodeJS.WriteStream;
  const pipe = { isTTY: false } as NodeJS.WriteStream;
  assert.equal(chooseMode({ json: true, quiet: true }, tty), 'json');
  assert.equal(chooseMode({ quiet: true }, tty), 'quiet');
  assert.equal(chooseMode({}, tty), 'tty');
  assert.equal(chooseMode({}, pipe), 'plain');
});

const t = '2026-01-01T00:00:00.000Z';
const events: RunEvent[] = [
  {
    type: 'run-start',
    t,
    runId: 'r1',
    experiment: 'e',
    runDir: '/runs/e/r1',
    instances: [
      { id: 'a', stage: 'a', kind: 'command', variantId: '', alias: '' },
      { id: 'b@x', stage: 'b', kind: 'command', variantId: 'x', alias: 'lr=0.1' },
    ],
  },
  { type: 'instance-cached', t, id: 'a', key: 'k1' },
  { type: 'instance-start', t, id: 'b@x', key: 'k2', attempt: 2, log: '/runs/e/r1/logs/b@x.log' },
  { type: 'instance-failed', t, id: 'b@x', key: 'k2', error: 'boom\ntail line', log: '/runs/e/r1/logs/b@x.log' },
  {
    type: 'run-end',
    t,
    status: 'failed',
    counts: { pending: 0, waiting: 0, running: 0, cached: 1, executed: 0, failed: 1, interrupted: 0, skipped: 0 },
    runDir: '/runs/e/r1',
  },
];

async function render(mode: 'plain' | 'quiet' | 'json'): Promise<string> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const r = await createRenderer(mode, out);
  for (const e of events) r.onEvent(e);
  await r.finish();
  return text;
}

test('plain renderer prints one line per state change and the failure with its log', async () => {
  const text = await render('plain');
  assert.match(text, /^run r1 of e: 2 stage instance\(s\)$/m);
  assert.match(text, /^ {2}cached {4}a$/m);
  assert.match(text, /^ {2}start {5}b \[lr=0\.1\] \(attempt 2\)$/m);
  assert.match(text, /FAILED {4}b \[lr=0\.1\]: boom\n {12}tail line\n {12}log: \/runs\/e\/r1\/logs\/b@x\.log/);
  assert.match(text, /^failed: 0 executed, 1 cached, 1 failed, 0 skipped/m);
  const quiet = await render('quiet');
  assert.doesNotMatch(quiet, /cached {4}a/);
  assert.match(quiet, /FAILED/);
});

test('json renderer prints the events, one parseable object per line', async () => {
  const lines = (await render('json')).trim().split('\n');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l)),
    events,
  );
});

test('the listr2 renderer settles every task (done, cached, failed, skipped) and prints the summary', async () => {
  const { TtyRenderer } = await import('../../engine/ui/tty.js');
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const r = new TtyRenderer(out, { silent: true });
  const four: RunEvent[] = [
    {
      type: 'run-start',
      t,
      runId: 'r2',
      experiment: 'e',
      runDir: '/runs/e/r2',
      instances: ['a', 'b', 'c', 'd'].map((id) => ({ id, stage: id, kind: 'command', variantId: '', alias: '' })),
    },
    { type: 'instance-cached', t, id: 'a', key: 'k' },
    { type: 'instance-start', t, id: 'b', key: 'k', attempt: 1, log: '/l' },
    { type: 'progress', t, id: 'b', done: 1, total: 2 },
    { type: 'instance-done', t, id: 'b', key: 'k', digest: 'd', ms: 5 },
    { type: 'instance-start', t, id: 'c', key: 'k', attempt: 1, log: '/l' },
    { type: 'instance-failed', t, id: 'c', key: 'k', error: 'bad', log: '/l' },
    { type: 'instance-skipped', t, id: 'd', reason: 'upstream c failed' },
    {
      type: 'run-end',
      t,
      status: 'failed',
      counts: { pending: 0, waiting: 0, running: 0, cached: 1, executed: 1, failed: 1, interrupted: 0, skipped: 1 },
      runDir: '/runs/e/r2',
    },
  ];
  for (const e of four) r.onEvent(e);
  const done = await Promise.race([r.finish().then(() => true), new Promise((res) => setTimeout(() => res(false), 5000))]);
  assert.equal(done, true, 'finish() resolved');
  assert.match(text, /^failed: 1 executed, 1 cached, 1 failed, 1 skipped/m);
});
