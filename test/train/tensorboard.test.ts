import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { crc32c, maskedCrc32c } from '../../ml/train/crc32c.js';
import { TensorBoardWriter, readEventFile, encodeScalarEvent } from '../../ml/train/tensorboard.js';
import { JsonlWriter, readJsonl } from '../../ml/train/jsonl.js';

test('CRC-32C check value: crc32c("123456789") = 0xE3069283; empty input = 0', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // Masking: rotate right 15, add 0xa282ead8 (mod 2^32).
  const c = 0xe3069283;
  assert.equal(maskedCrc32c(Buffer.from('123456789')), (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0);
});

// TensorFlow's event.proto / summary.proto, the fields we use, parsed by protobufjs as an
// independent decoder of our hand-encoded bytes.
const PROTO = `
syntax = "proto3";
message SummaryValue { string tag = 1; float simple_value = 2; }
message Summary { repeated SummaryValue value = 1; }
message SessionLog { int32 status = 1; }
message Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; SessionLog session_log = 7; }
`;

test('event proto bytes decode with protobufjs as Event{wall_time, step, summary{tag, simple_value}}', () => {
  const Event = protobuf.parse(PROTO, { keepCase: true }).root.lookupType('Event');
  const bytes = encodeScalarEvent(1700000000.25, 123456789012, [
    { tag: 'loss/train', value: 0.5 },
    { tag: 'lr', value: 1e-3 },
  ]);
  const ev = Event.toObject(Event.decode(bytes), { longs: Number }) as any;
  assert.equal(ev.wall_time, 1700000000.25);
  assert.equal(ev.step, 123456789012);
  assert.equal(ev.summary.value[0].tag, 'loss/train');
  assert.equal(ev.summary.value[0].simple_value, 0.5);
  assert.equal(ev.summary.value[1].simple_value, Math.fround(1e-3));
});

test('TensorBoard file: name, version record, purge marker, scalars read back with valid CRCs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tb-'));
  let t = 1700000000;
  const w = new TensorBoardWriter(dir, { host: 'testhost', now: () => t, purgeStep: 3 });
  assert.equal(w.path, join(dir, 'events.out.tfevents.1700000000.testhost'));
  for (let step = 3; step < 6; step++) {
    t += 1;
    w.scalars(step, { 'loss/train': 1 / (step + 1), 'acc/train': step / 10 });
  }
  w.scalar('lr', 0.1, 5);
  w.close();
  const w2 = new TensorBoardWriter(dir, { host: 'testhost', now: () => 1700000000 });
  w2.close();
  assert.equal(readdirSync(dir).length, 2, 'a second writer in the same second gets its own file');

  const { events, scalars } = readEventFile(w.path);
  assert.equal(events[0].fileVersion, 'brain.Event:2');
  assert.equal(events[0].wallTime, 1700000000);
  assert.equal(events[1].sessionStatus, 1);
  assert.equal(events[1].step, 3);
  const loss = scalars.filter((s) => s.tag === 'loss/train');
  assert.deepEqual(
    loss.map((s) => s.step),
    [3, 4, 5],
  );
  assert.deepEqual(
    loss.map((s) => s.value),
    [1 / 4, 1 / 5, 1 / 6].map(Math.fround),
  );
  assert.deepEqual(
    loss.map((s) => s.wallTime),
    [1700000001, 1700000002, 1700000003],
  );
  assert.deepEqual(
    scalars.find((s) => s.tag === 'lr'),
    { tag: 'lr', step: 5, value: Math.fround(0.1), wallTime: 1700000003 },
  );

  // Independent framing check: every record is len | masked crc(len) | data | masked crc(data).
  const buf = readFileSync(w.path);
  let off = 0,
    records = 0;
  while (off < buf.length) {
    const len = Number(buf.readBigUInt64LE(off));
    assert.equal(buf.readUInt32LE(off + 8), maskedCrc32c(buf.subarray(off, off + 8)));
    assert.equal(buf.readUInt32LE(off + 12 + len), maskedCrc32c(buf.subarray(off + 12, off + 12 + len)));
    off += 16 + len;
    records++;
  }
  assert.equal(off, buf.length);
  assert.equal(records, events.length);

  // A flipped data byte is caught by the CRC.
  const bad = Buffer.from(buf);
  bad[buf.length - 6] ^= 0x40;
  const badFile = join(dir, 'corrupt.tfevents');
  writeFileSync(badFile, bad);
  assert.throws(() => readEventFile(badFile), /corrupt\.tfevents @ byte \d+: data CRC mismatch/);
});

test('metrics JSONL: one flushed line per record, torn tail dropped, resume keeps records up to the checkpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jsonl-'));
  const file = join(dir, 'metrics.jsonl');
  const w = new JsonlWriter(file);
  for (let i = 0; i < 5; i++) w.write({ iteration: i, loss: 1 / (i + 1) });
  w.write({ iteration: 5, loss: NaN });
  // Lines are on disk before close (no user-space buffering).
  assert.equal(readFileSync(file, 'utf8').split('\n').length, 7);
  w.close();
  appendFileSync(file, '{"iteration": 6, "lo'); // a crash mid-line
  assert.deepEqual(
    readJsonl(file).map((r) => r.iteration),
    [0, 1, 2, 3, 4, 5],
  );
  assert.equal(readJsonl(file)[5].loss, 'NaN');
  const resumed = new JsonlWriter(file, { keep: (r) => (r.iteration as number) <= 2 });
  resumed.write({ iteration: 3, loss: 0.3 });
  resumed.close();
  assert.deepEqual(
    readJsonl(file).map((r) => r.iteration),
    [0, 1, 2, 3],
  );
  writeFileSync(file, '{"a":1}\nnot json\n{"b":2}\n');
  assert.throws(() => readJsonl(file), /metrics\.jsonl:2: invalid JSON/);
});
