import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROTOCOLS, resolveProtocol, stepCount, stepPixels, validateProtocol } from '../../ml/metrics/protocol.js';

test('ca-stream protocol: 8·W step (28 steps at 224), 5×5 σ5 zero-padded blur, normalised-zero deletion, gt', () => {
  const p = resolveProtocol('ca-stream');
  assert.equal(stepPixels(p, 224, 224), 1792);
  assert.equal(stepCount(p, 224, 224), 28);
  assert.deepEqual(p.insdel.blur, { size: 5, sigma: 5, truncate: 4, padding: 'zero' });
  assert.equal(p.insdel.deletionSubstrate, 'zeros');
  assert.equal(p.insdel.insertionStart, 'blur');
  assert.equal(p.target, 'gt');
  assert.equal(p.confidence.maskSpace, 'pixel');
  assert.deepEqual(p.saliency.upsample, { mode: 'bilinear', alignCorners: false });
});

test('rise protocol: W step (224 steps), 11×11 blur, predicted class', () => {
  const p = resolveProtocol('rise');
  assert.equal(stepPixels(p, 224, 224), 224);
  assert.equal(stepCount(p, 224, 224), 224);
  assert.equal(p.insdel.blur.size, 11);
  assert.equal(p.target, 'pred');
});

test('overrides deep-merge, result is frozen and JSON round-trips', () => {
  const p = resolveProtocol('ca-stream', { insdel: { step: { unit: 'pixels', count: 1000 } }, target: 'pred' });
  assert.equal(stepPixels(p, 224, 224), 1000);
  assert.equal(stepCount(p, 224, 224), 51);
  assert.equal(p.insdel.blur.size, 5);
  assert.equal(p.target, 'pred');
  assert.ok(Object.isFrozen(p.insdel.step));
  assert.deepEqual(JSON.parse(JSON.stringify(p)), p);
  assert.deepEqual(validateProtocol(JSON.parse(JSON.stringify(p))), p);
  // the built-in table is not mutated by overrides
  assert.equal(PROTOCOLS['ca-stream'].target, 'gt');
});

test('bad overrides name the field', () => {
  assert.throws(
    () => resolveProtocol('ca-stream', { insdel: { blur: { size: 4 } } }, 'exp.yaml: evaluate.protocol'),
    /exp\.yaml: evaluate\.protocol: protocol field "insdel\.blur\.size": expected an odd positive integer, got 4/,
  );
  assert.throws(() => resolveProtocol('ca-stream', { insdel: { stepp: 3 } }), /unknown protocol field "insdel\.stepp"/);
  assert.throws(() => resolveProtocol('ca-stream', { target: 'label' }), /"target": expected one of "gt", "pred"/);
  assert.throws(() => resolveProtocol('nope'), /unknown protocol "nope" \(known: ca-stream, rise\)/);
  assert.throws(() => validateProtocol({ ...resolveProtocol('rise'), localisation: {} }), /"localisation\.tolerance"/);
});
