import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNpy, readNpy, NpyError } from '../../ml/io/npy.js';

// Files written by NumPy 2.4 (np.save / numpy.lib.format.write_array), base64-encoded.
const NPY: Record<string, string> = {
  f4: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAAwAAAQEAAAIA+AADgQAAAAEE=',
  f8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAqamZmZmZm5PwAAACBfoALCAAAAAAAACEA=',
  f2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAOADA/3s=',
  i8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr9/////////wAAAAAAAQAA',
  i4: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoHAAAA9////w==',
  u1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfHUxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoA/4AB',
  v2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEAAAEBA',
  v3: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8aTQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMywpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAQAAAAIAAAA=',
  fortran:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAABAQAAAgD8AAIBAAAAAQAAAoEA=',
  scalar:
    'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAGBA',
  c8: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGM4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDEsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAIA/AAAAQA==',
};
const buf = (k: string) => Buffer.from(NPY[k], 'base64');

test('npy: float32, float64 and float16 decode to Float32Array with the right shape', () => {
  const a = parseNpy(buf('f4'));
  assert.deepEqual(a.shape, [3, 2]);
  assert.ok(a.data instanceof Float32Array);
  assert.deepEqual(Array.from(a.data as Float32Array), [1.5, -2, 3, 0.25, 7, 8]);
  const b = parseNpy(buf('f8'));
  assert.deepEqual(b.shape, [3]);
  assert.deepEqual(Array.from(b.data as Float32Array), [Math.fround(0.1), -1e10, 3]);
  const h = parseNpy(buf('f2'));
  assert.deepEqual(Array.from(h.data as Float32Array), [0.5, -2, 65504]);
});

test('npy: integer and byte dtypes', () => {
  const i8 = parseNpy(buf('i8'));
  assert.deepEqual(i8.shape, [1, 2]);
  assert.deepEqual(Array.from(i8.data as BigInt64Array), [-3n, 2n ** 40n]);
  assert.deepEqual(Array.from(parseNpy(buf('i4')).data as Int32Array), [7, -9]);
  const u1 = parseNpy(buf('u1'));
  assert.ok(u1.data instanceof Uint8Array);
  assert.deepEqual(Array.from(u1.data), [0, 255, 128, 1]);
});

test('npy: version 2 and 3 headers, and 0-d arrays', () => {
  assert.deepEqual(Array.from(parseNpy(buf('v2')).data as Float32Array), [0, 1, 2, 3]);
  assert.deepEqual(parseNpy(buf('v2')).shape, [2, 2]);
  assert.deepEqual(Array.from(parseNpy(buf('v3')).data as Int32Array), [0, 1, 2]);
  const s = parseNpy(buf('scalar'));
  assert.deepEqual(s.shape, []);
  assert.deepEqual(Array.from(s.data as Float32Array), [3.5]);
});

test('npy: clear errors for fortran order, unsupported dtypes, truncation, bad magic', () => {
  assert.throws(
    () => parseNpy(buf('fortran'), 'a.npy'),
    (e: Error) => e instanceof NpyError && /a\.npy: .*fortran_order/.test(e.message),
  );
  assert.throws(() => parseNpy(buf('c8'), 'c.npy'), /c\.npy: unsupported dtype '<c8'/);
  const f4 = buf('f4');
  assert.throws(
    () => parseNpy(f4.subarray(0, f4.length - 3), 't.npy'),
    /t\.npy: truncated: <f4\[3,2\] needs 24 data bytes but the file has 21/,
  );
  assert.throws(() => parseNpy(f4.subarray(0, 40), 't.npy'), /t\.npy: truncated/);
  assert.throws(() => parseNpy(Buffer.from('PK\x03\x04 not numpy'), 'z.npy'), /z\.npy: not a \.npy file/);
});

test('npy: readNpy reads from disk and names a missing file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'npy-'));
  try {
    await writeFile(join(dir, 'x.npy'), buf('f4'));
    const a = await readNpy(join(dir, 'x.npy'));
    assert.deepEqual(a.shape, [3, 2]);
    await assert.rejects(readNpy(join(dir, 'missing.npy')), /missing\.npy: cannot read \(ENOENT\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
