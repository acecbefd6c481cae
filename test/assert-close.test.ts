// The shared closeness assertion fails where it should: outside the tolerance, on NaN, on a length
// mismatch; and scales by max(1, |expected|) unless told otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAllClose } from './assert-close.js';

test('within tolerance passes; relative above 1, absolute below', () => {
  assertAllClose([1000.0009, 0.0000009], [1000, 0], { tol: 1e-6 });
  assert.throws(() => assertAllClose([0.5, 0.000002], [0.5, 0], { tol: 1e-6 }), /value\[1\]/);
});

test('NaN, lengths and a fixed scale', () => {
  assert.throws(() => assertAllClose([1, NaN, 3], [1, 2, 3]), /value\[1\] = NaN/);
  assert.throws(() => assertAllClose([1, 2], [1, 2, 3], { what: 'taps' }), /taps: length 2 ≠ 3/);
  assert.throws(() => assertAllClose([1000.0009], [1000], { tol: 1e-6, scale: 1 }), /value\[0\]/);
});
