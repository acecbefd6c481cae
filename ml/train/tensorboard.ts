// TensorBoard event files without TensorFlow: TFRecord framing of hand-encoded `Event` protos.
//   record  = uint64 LE length | uint32 LE masked crc32c(length bytes) | data | uint32 LE masked crc32c(data)
//   Event   = { 1: wall_time double, 2: step int64, 3: file_version string, 5: summary Summary,
//               7: session_log SessionLog }
//   Summary = { 1: repeated Value }, Value = { 1: tag string, 2: simple_value float }
//   SessionLog = { 1: status enum (1 = START) }
// A writer given `purgeStep` first logs SessionLog START at that step, which makes TensorBoard drop
// the events at or after it from earlier files of the run — what a resumed run needs.
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { maskedCrc32c } from './crc32c.js';

// ---------------------------------------------------------------- protobuf encoding

class ProtoWriter {
  private parts: number[] = [];

  private varint(v: bigint): void {
    // int64 fields encode negatives as their 64-bit two's complement (10 bytes).
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.parts.push(Number(x));
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  int64(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }

  double(field: number, v: number): this {
    this.key(field, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.parts.push(...b);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.parts.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(data.length));
    for (const x of data) this.parts.push(x);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export interface ScalarValue {
  tag: string;
  value: number;
}

export function encodeScalarEvent(wallTime: number, step: number, values: ScalarValue[]): Uint8Array {
  const summary = new ProtoWriter();
  for (const v of values) summary.bytes(1, new ProtoWriter().string(1, v.tag).float(2, v.value).finish());
  return new ProtoWriter().double(1, wallTime).int64(2, step).bytes(5, summary.finish()).finish();
}

function encodeFileVersionEvent(wallTime: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).string(3, 'brain.Event:2').finish();
}

function encodeSessionStartEvent(wallTime: number, step: number): Uint8Array {
  return new ProtoWriter().double(1, wallTime).int64(2, step).bytes(7, new ProtoWriter().int64(1, 1).finish()).finish();
}

export function frameRecord(data: Uint8Array): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(data.length));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(maskedCrc32c(len));
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc32c(data));
  return Buffer.concat([len, head, Buffer.from(data), tail]);
}

// ---------------------------------------------------------------- writer

export interface TensorBoardWriterOptions {
  /** Drop earlier events at steps >= this (resume). */
  purgeStep?: number;
  /** Host part of the file name. Default os.hostname(). */
  host?: string;
  /** Clock in seconds (injectable for tests). Default Date.now()/1000. */
  now?: () => number;
}

export class TensorBoardWriter {
  readonly path: string;
  private fd: number | null;
  private readonly now: () => number;

  constructor(dir: string, o: TensorBoardWriterOptions = {}) {
    this.now = o.now ?? (() => Date.now() / 1000);
    const t = this.now();
    const base = `events.out.tfevents.${Math.floor(t)}.${(o.host ?? hostname()).replace(/[/\\]/g, '_')}`;
    let fd: number | null = null;
    let path = '';
    // Two writers started in the same second on one host must not share (or clobber) a file.
    for (let i = 0; fd === null; i++) {
      path = join(dir, i === 0 ? base : `${base}.${i}`);
      try {
        fd = openSync(path, 'wx');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || i > 1000)
          throw new Error(`TensorBoard writer: cannot create ${path} (${(e as Error).message})`);
      }
    }
    this.fd = fd;
    this.path = path;
    this.write(encodeFileVersionEvent(t));
    if (o.purgeStep !== undefined) this.write(encodeSessionStartEvent(t, o.purgeStep));
  }

  private write(event: Uint8Array): void {
    if (this.fd === null) throw new Error(`TensorBoard writer: ${this.path} is closed`);
    // Unbuffered write: each record reaches the OS whole, so a crash loses at most the record in flight.
    writeSync(this.fd, frameRecord(event));
  }

  /** Log one or several scalars at a step. */
  scalars(step: number, values: Record<string, number>, wallTime = this.now()): void {
    if (!Number.isInteger(step)) throw new Error(`TensorBoard writer: step must be an integer, got ${step}`);
    this.write(
      encodeScalarEvent(
        wallTime,
        step,
        Object.entries(values).map(([tag, value]) => ({ tag, value })),
      ),
    );
  }

  scalar(tag: string, value: number, step: number, wallTime?: number): void {
    this.scalars(step, { [tag]: value }, wallTime);
  }

  flush(): void {
    if (this.fd !== null) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = null;
  }
}

// ---------------------------------------------------------------- reader

export interface ParsedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values?: ScalarValue[];
  sessionStatus?: number;
}

export interface ScalarPoint {
  tag: string;
  step: number;
  value: number;
  wallTime: number;
}

interface Field {
  field: number;
  wire: number;
  /** varint value, or fixed value bits. */
  int?: bigint;
  bytes?: Uint8Array;
  /** Byte offset of the fixed-width payload (for double/float decoding). */
  fixed?: Buffer;
}

function decodeFields(buf: Uint8Array, where: string): Field[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let shift = 0n;
    let v = 0n;
    for (;;) {
      if (i >= b.length) throw new Error(`${where}: truncated varint`);
      const x = b[i++];
      v |= BigInt(x & 0x7f) << shift;
      if (!(x & 0x80)) return v;
      shift += 7n;
      if (shift > 63n) throw new Error(`${where}: varint longer than 10 bytes`);
    }
  };
  while (i < b.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ field, wire, int: varint() });
    else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      if (i + n > b.length) throw new Error(`${where}: truncated fixed field ${field}`);
      out.push({ field, wire, fixed: b.subarray(i, i + n) });
      i += n;
    } else if (wire === 2) {
      const n = Number(varint());
      if (i + n > b.length) throw new Error(`${where}: truncated field ${field}`);
      out.push({ field, wire, bytes: b.subarray(i, i + n) });
      i += n;
    } else throw new Error(`${where}: unsupported wire type ${wire} for field ${field}`);
  }
  return out;
}

function decodeEvent(data: Uint8Array, where: string): ParsedEvent {
  const ev: ParsedEvent = { wallTime: 0, step: 0 };
  for (const f of decodeFields(data, where)) {
    if (f.field === 1 && f.wire === 1) ev.wallTime = f.fixed!.readDoubleLE(0);
    else if (f.field === 2 && f.wire === 0) ev.step = Number(BigInt.asIntN(64, f.int!));
    else if (f.field === 3 && f.wire === 2) ev.fileVersion = Buffer.from(f.bytes!).toString('utf8');
    else if (f.field === 5 && f.wire === 2) {
      ev.values = ev.values ?? [];
      for (const vf of decodeFields(f.bytes!, `${where} summary`)) {
        if (vf.field !== 1 || vf.wire !== 2) continue;
        let tag = '';
        let value: number | undefined;
        for (const x of decodeFields(vf.bytes!, `${where} summary value`)) {
          if (x.field === 1 && x.wire === 2) tag = Buffer.from(x.bytes!).toString('utf8');
          else if (x.field === 2 && x.wire === 5) value = x.fixed!.readFloatLE(0);
        }
        if (value !== undefined) ev.values.push({ tag, value });
      }
    } else if (f.field === 7 && f.wire === 2) {
      for (const x of decodeFields(f.bytes!, `${where} session_log`)) if (x.field === 1 && x.wire === 0) ev.sessionStatus = Number(x.int!);
    }
  }
  return ev;
}

/** Parse an event file, verifying both CRCs of every record; throws naming file and byte offset. */
export function readEventFile(file: string): { events: ParsedEvent[]; scalars: ScalarPoint[] } {
  const buf = readFileSync(file);
  const events: ParsedEvent[] = [];
  let off = 0;
  while (off < buf.length) {
    const where = `${file} @ byte ${off}`;
    if (off + 12 > buf.length) throw new Error(`${where}: truncated record header`);
    const lenBytes = buf.subarray(off, off + 8);
    if (buf.readUInt32LE(off + 8) !== maskedCrc32c(lenBytes)) throw new Error(`${where}: length CRC mismatch`);
    const len = Number(buf.readBigUInt64LE(off));
    const start = off + 12;
    if (start + len + 4 > buf.length) throw new Error(`${where}: truncated record (needs ${len} data bytes)`);
    const data = buf.subarray(start, start + len);
    if (buf.readUInt32LE(start + len) !== maskedCrc32c(data)) throw new Error(`${where}: data CRC mismatch`);
    events.push(decodeEvent(data, where));
    off = start + len + 4;
  }
  const scalars: ScalarPoint[] = [];
  for (const e of events) for (const v of e.values ?? []) scalars.push({ tag: v.tag, step: e.step, value: v.value, wallTime: e.wallTime });
  return { events, scalars };
}
