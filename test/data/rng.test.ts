import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../ml/data/rng.js';

test('same keys → same stream; any key change → a different stream', () => {
  const a = Array.from(
    { length: 8 },
    (
      (r) => () =>
        r.nextU32()
    )(new Rng(1, 2, 3)),
  );
  const b = Array.from(
    { length: 8 },
    (
      (r) => () =>
        r.nextU32()
    )(new Rng(1, 2, 3)),
  );
  assert.deepEqual(a, b);
  for (const keys of [
    [1, 2, 4],
    [1, 3, 3],
    [2, 2, 3],
    [1, 2],
    [1, 2, 3, 0],
    [1, 2, 3 + 2 ** 32],
  ]) {
    const r = new Rng(...keys);
    assert.notDeepEqual(
      Array.from({ length: 8 }, () => r.nextU32()),
      a,
      `keys ${keys}`,
    );
  }
});

test('state() / restore() continue the stream exactly', () => {
  const r = new Rng(42);
  for (let i = 0; i < 13; i++) r.float();
  const s = r.state();
  const ahead = Array.from({ length: 20 }, () => r.float());
  assert.deepEqual(
    Array.from(
      { length: 20 },
      (
        (q) => () =>
          q.float()
      )(Rng.fromState(s)),
    ),
    ahead,
  );
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  assert.throws(() => new Rng(0).restore([0, 0, 0, 0]), /all-zero state/);
  assert.throws(() => new Rng(0).restore([1, 2, 3] as never), /invalid state/);
});

test('float, int, shuffle: ranges and rough uniformity', () => {
  const r = new Rng(7);
  const counts = new Array(10).fill(0);
  let sum = 0;
  for (let i = 0; i < 20000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
    sum += f;
    const k = r.int(10);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 10);
    counts[k]++;
  }
  assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
  // each bin expects 2000 ± ~42 (1σ); 5σ bounds
  assert.ok(
    counts.every((c) => Math.abs(c - 2000) < 220),
    `${counts}`,
  );
  const p = r.permutation(100);
  assert.deepEqual(
    [...p].sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.throws(() => r.int(0), /bad range/);
  assert.throws(() => new Rng(1.5), /integers/);
});

test('normal(): mean 0, variance 1', () => {
  const r = new Rng(3);
  let s = 0;
  let s2 = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    s += x;
    s2 += x * x;
  }
  assert.ok(Math.abs(s / n) < 0.04);
  assert.ok(Math.abs(s2 / n - 1) < 0.05);
});
