// Class-balanced, seeded image selection for the saliency stage (ml/explain/subset.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balancedOrder, balancedSubset } from '../../ml/explain/subset.js';

/** A split ordered by class, as the index stage writes it: sizes[c] images of class c, ids from 100. */
function classOrdered(sizes: number[]): { ids: number[]; labelOf: (id: number) => number } {
  const label = new Map<number, number>();
  let id = 100;
  sizes.forEach((n, c) => {
    for (let i = 0; i < n; i++) label.set(id++, c);
  });
  return { ids: [...label.keys()], labelOf: (i) => label.get(i)! };
}

test('every prefix covers min(N, classes) classes and no class gets two images more than another', () => {
  const { ids, labelOf } = classOrdered([5, 5, 5, 5]);
  for (const seed of [0, 1, 7]) {
    const order = balancedOrder(ids, labelOf, seed);
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      ids,
      'a permutation of the split',
    );
    for (let n = 1; n <= order.length; n++) {
      const counts = [0, 0, 0, 0];
      for (const id of order.slice(0, n)) counts[labelOf(id)]++;
      assert.equal(counts.filter((c) => c > 0).length, Math.min(n, 4), `seed ${seed}, N = ${n}`);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `seed ${seed}, N = ${n}: ${counts}`);
    }
  }
  // First-N would have been one class: the old behaviour this replaces.
  assert.equal(new Set(ids.slice(0, 4).map(labelOf)).size, 1);
});

test('uneven classes: a class that runs out drops out of the round robin; every image appears once', () => {
  const { ids, labelOf } = classOrdered([1, 4, 2]);
  const order = balancedOrder(ids, labelOf, 3);
  assert.equal(order.length, 7);
  assert.equal(new Set(order).size, 7);
  assert.equal(new Set(order.slice(0, 3).map(labelOf)).size, 3, 'round 1 has one image of each class');
  assert.equal(new Set(order.slice(3, 5).map(labelOf)).size, 2, 'round 2: the two classes with images left');
  assert.deepEqual(order.slice(5).map(labelOf), [1, 1], 'rounds 3 and 4: only class 1 is left');
});

test('deterministic for a seed, independent of the order the split lists its ids; another seed reorders', () => {
  const { ids, labelOf } = classOrdered([6, 6, 6]);
  const a = balancedOrder(ids, labelOf, 42);
  assert.deepEqual(balancedOrder(ids, labelOf, 42), a);
  assert.deepEqual(balancedOrder([...ids].reverse(), labelOf, 42), a);
  const b = balancedOrder(ids, labelOf, 43);
  assert.notDeepEqual(b, a);
  // Within a class the order is shuffled too, not ascending ids.
  const class0 = a.filter((id) => labelOf(id) === 0);
  assert.notDeepEqual(
    class0,
    [...class0].sort((x, y) => x - y),
  );
});

test('a shorter subset is a prefix (so a subset) of a longer one; no limit keeps every image', () => {
  const { ids, labelOf } = classOrdered([4, 3, 5]);
  const explained = balancedSubset(ids, labelOf, 5, 7);
  const overlays = balancedSubset(ids, labelOf, 5, 3);
  assert.deepEqual(overlays, explained.slice(0, 3));
  assert.equal(new Set(overlays.map(labelOf)).size, 3);
  assert.equal(balancedSubset(ids, labelOf, 5).length, ids.length);
  assert.equal(balancedSubset(ids, labelOf, 5, 100).length, ids.length);
});

test('bad input: a repeated id or a non-integer seed is a clear error', () => {
  assert.throws(() => balancedOrder([1, 2, 1], () => 0, 0), /image id 1 is listed twice/);
  assert.throws(() => balancedOrder([1], () => 0, 0.5), /seed must be an integer/);
  assert.deepEqual(
    balancedOrder([], () => 0, 0),
    [],
  );
});
