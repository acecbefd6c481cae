#!/usr/bin/env node
// Wraps a pretrained ResNet safetensors file (torchvision / timm parameter names) as a ca-pipe model
// directory — model.json + final.safetensors, the layout a `train` stage writes — so that saliency,
// evaluate and frozen CA-Stream training can use it as their `model` / `init` input. Run by the
// `weights` command stage of experiments/resnet50-*.yaml; plain JavaScript so it needs no build.
//
//   node model-dir.mjs --weights W.safetensors --arch resnet50 --out DIR
//                      [--classes classes.json] [--num-classes N] [--input-size 224] [--resize 256] [--seed 0]
//                      [--preprocessing torchvision|fast]
//
// The card records --preprocessing (default torchvision: torchvision's and timm's ImageNet weights
// were trained on PIL-decoded, PIL-resized pixels), so stages reading it use the same pixels.
//
// With --num-classes different from the file's classifier, fc.weight / fc.bias are replaced by a
// fresh seeded U(-1/√in, 1/√in) layer (PyTorch's nn.Linear default), for fine-tuning on a new
// label set (e.g. MIT Indoor-67); every other tensor is copied byte for byte.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith('--') || argv[i + 1] === undefined) fail(`expected --name value pairs, got "${k}"`);
    out[k.slice(2)] = argv[i + 1];
  }
  return out;
}

function fail(msg) {
  process.stderr.write(`model-dir: ${msg}\n`);
  process.exit(2);
}

function readHeader(file) {
  const buf = readFileSync(file);
  if (buf.length < 8) fail(`${file}: not a safetensors file (shorter than 8 bytes)`);
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) fail(`${file}: not a safetensors file (header length ${n} beyond the file)`);
  let header;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    fail(`${file}: the safetensors header is not JSON (${e.message})`);
  }
  return { buf, header, dataStart: 8 + n };
}

/** A small deterministic generator (mulberry32): the fresh classifier depends only on --seed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes a safetensors file from {name: {dtype, shape, bytes}} (offsets in insertion order). */
function writeSafetensors(file, tensors, metadata) {
  const header = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8; // keeps tensor data 8-byte aligned
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, json, ...Object.values(tensors).map((t) => t.bytes)]));
}

const a = args(process.argv.slice(2));
for (const k of ['weights', 'arch', 'out']) if (!a[k]) fail(`--${k} is required`);
const { buf, header, dataStart } = readHeader(a.weights);
const fcKey = ['fc.weight', 'module.fc.weight'].find((k) => header[k]);
if (!fcKey) fail(`${a.weights}: no fc.weight tensor (expected torchvision ResNet parameter names)`);
const [fileClasses, inFeatures] = header[fcKey].shape;
const numClasses = a['num-classes'] ? Number(a['num-classes']) : fileClasses;
if (!Number.isInteger(numClasses) || numClasses < 1) fail(`--num-classes must be a positive integer, got "${a['num-classes']}"`);

const target = join(a.out, 'final.safetensors');
if (numClasses === fileClasses) {
  copyFileSync(a.weights, target);
} else {
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__' || name.endsWith('fc.weight') || name.endsWith('fc.bias')) continue;
    const [s, e] = info.data_offsets;
    tensors[name] = { dtype: info.dtype, shape: info.shape, bytes: buf.subarray(dataStart + s, dataStart + e) };
  }
  const r = rng(Number(a.seed ?? 0));
  const bound = 1 / Math.sqrt(inFeatures);
  const w = new Float32Array(numClasses * inFeatures).map(() => (2 * r() - 1) * bound);
  const b = new Float32Array(numClasses).map(() => (2 * r() - 1) * bound);
  tensors['fc.weight'] = { dtype: 'F32', shape: [numClasses, inFeatures], bytes: Buffer.from(w.buffer) };
  tensors['fc.bias'] = { dtype: 'F32', shape: [numClasses], bytes: Buffer.from(b.buffer) };
  writeSafetensors(target, tensors, { source: String(a.weights), fresh_fc: String(numClasses) });
}

let classes = Array.from({ length: numClasses }, (_, i) => `class_${i}`);
if (a.classes) {
  const list = JSON.parse(readFileSync(a.classes, 'utf8'));
  const names = Array.isArray(list) ? list : list.classes;
  if (!Array.isArray(names)) fail(`${a.classes}: expected a JSON array of class names (or {"classes": [...]})`);
  if (names.length > numClasses) fail(`${a.classes}: ${names.length} classes but the classifier has ${numClasses} outputs (set --num-classes)`);
  classes = classes.map((c, i) => (typeof names[i] === 'string' ? names[i] : c));
}
const inputSize = Number(a['input-size'] ?? 224);
const preprocessing = a.preprocessing ?? 'torchvision';
if (preprocessing !== 'torchvision' && preprocessing !== 'fast') fail(`--preprocessing must be torchvision or fast, got "${preprocessing}"`);
const card = {
  format: 'ca-pipe.model/1',
  arch: a.arch,
  head: 'gap',
  heads: 1,
  num_classes: numClasses,
  input_size: inputSize,
  resize: Number(a.resize ?? Math.floor(inputSize / 0.875)),
  preprocessing,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  classes,
  weights: 'final.safetensors',
};
writeFileSync(join(a.out, 'model.json'), JSON.stringify(card, null, 2) + '\n');
process.stdout.write(`model-dir: ${a.arch}, ${numClasses} classes${numClasses !== fileClasses ? ` (fresh classifier, was ${fileClasses})` : ''} → ${a.out}\n`);
