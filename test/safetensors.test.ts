import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensors, serializeSafetensors, f32ToF16 } from '../ml/io/safetensors.js';

test('safetensors round-trips F32, F16, BF16, I64 and metadata', () => {
  const buf = serializeSafetensors(
    {
      a: { shape: [2, 2], data: new Float32Array([1, -2.5, 3.25, 0]) },
      h: { dtype: 'F16', shape: [3], data: new Float32Array([0.5, -1, 65504]) },
      b: { dtype: 'BF16', shape: [2], data: new Float32Array([1, -2]) },
      i: { shape: [2], data: new BigInt64Array([1n, -7n]) },
    },
    { note: 'x' },
  );
  const f = parseSafetensors(buf);
  assert.deepEqual(f.metadata, { note: 'x' });
  assert.deepEqual(Array.from(f.tensors.get('a')!.data as Float32Array), [1, -2.5, 3.25, 0]);
  assert.deepEqual(Array.from(f.tensors.get('h')!.data as Float32Array), [0.5, -1, 65504]);
  assert.deepEqual(Array.from(f.tensors.get('b')!.data as Float32Array), [1, -2]);
  assert.deepEqual(Array.from(f.tensors.get('i')!.data as BigInt64Array), [1n, -7n]);
});

test('f32ToF16 rounds to nearest even and handles subnormals', () => {
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(f32ToF16(2 ** -24), 0x0001);
  assert.equal(f32ToF16(1e6), 0x7c00);
});

test('truncated and malformed safetensors name the file and the problem', () => {
  const good = serializeSafetensors({ w: { shape: [4], data: new Float32Array(4) } });
  assert.throws(() => parseSafetensors(good.subarray(0, good.length - 3), 'w.safetensors'), /w\.safetensors \[w\]: truncated/);
  assert.throws(() => parseSafetensors(Buffer.alloc(4), 'x.st'), /x\.st: truncated/);
  const bad = Buffer.from(good);
  bad.write('x', 8);
  assert.throws(() => parseSafetensors(bad, 'm.st'), /m\.st: malformed JSON header/);
  const hdr = JSON.stringify({ w: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hdr.length));
  assert.throws(
    () => parseSafetensors(Buffer.concat([len, Buffer.from(hdr), Buffer.alloc(8)]), 'd.st'),
    /d\.st \[w\]: unsupported dtype "F64"/,
  );
});
