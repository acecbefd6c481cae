#!/usr/bin/env node
// Wraps a pretrained safetensors file (torchvision / timm parameter names; ResNet, ResNeXt, Wide
// ResNet, ConvNeXt or EfficientNet) as a ca-pipe model directory — model.json + final.safetensors,
// the layout a `train` stage writes — so that saliency, evaluate and frozen CA-Stream training can
// use it as their `model` / `init` input. With --head ca-stream (or ca-final) a CA-Stream
// checkpoint with the official names (cls_token, base.to_out.1.* … / cls_stream.<k>.to_out.1.*)
// becomes a CA model directory. Run by the `weights` command stage of experiments/*-imagenet.yaml;
// plain JavaScript so it needs no build.
//
//   node model-dir.mjs --weights W.safetensors --arch resnet50 --out DIR
//                      [--head gap|ca-stream|ca-final] [--heads 1] [--classes classes.json]
//                      [--num-classes N] [--input-size 224] [--resize 256] [--seed 0]
//                      [--preprocessing torchvision|fast]
//
// The card records --preprocessing (default torchvision: torchvision's and timm's ImageNet weights
// were trained on PIL-decoded, PIL-resized pixels), so stages reading it use the same pixels, and
// the user's weights file as `source`, so that weight errors name it rather than the store copy.
//
// With --num-classes different from the file's classifier, its last Linear (fc / classifier.1 /
// classifier.2) is replaced by a fresh seeded U(-1/√in, 1/√in) layer (PyTorch's nn.Linear
// default), for fine-tuning on a new label set (e.g. MIT Indoor-67); every other tensor is copied
// byte for byte. The shapes of everything else are checked when a stage loads the directory.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FLAGS = ['weights', 'arch', 'out', 'head', 'heads', 'classes', 'num-classes', 'input-size', 'resize', 'seed', 'preprocessing'];

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith('--') || argv[i + 1] === undefined || argv[i + 1].startsWith('--')) fail(`expected --name value pairs, got "${k}"`);
    const name = k.slice(2);
    if (!FLAGS.includes(name)) fail(`unknown flag "${k}" (known: ${FLAGS.map((f) => `--${f}`).join(', ')})`);
    if (name in out) fail(`"${k}" given twice`);
    out[name] = argv[i + 1];
  }
  return out;
}

/** The classifier's last Linear per family (torchvision names); the arch names ca-pipe knows. */
const FAMILIES = [
  { pattern: /^(resnet|resnext|wide_resnet)/, linear: 'fc', blocks: /^(base|l[1-4]|cls_surrogate)\.to_out\.1\./ },
  { pattern: /^convnext/, linear: 'classifier.2', blocks: /^cls_stream\.\d+\.to_out\.1\./ },
  { pattern: /^efficientnet/, linear: 'classifier.1', blocks: /^cls_stream\.\d+\.to_out\.1\./ },
];

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
const family = FAMILIES.find((f) => f.pattern.test(a.arch));
if (!family) fail(`--arch "${a.arch}" is not a ResNet, ResNeXt, Wide ResNet, ConvNeXt or EfficientNet name`);
const head = a.head ?? 'gap';
if (!['gap', 'ca-stream', 'ca-final'].includes(head)) fail(`--head must be gap, ca-stream or ca-final, got "${head}"`);
const heads = Number(a.heads ?? 1);
if (!Number.isInteger(heads) || heads < 1) fail(`--heads must be a positive integer, got "${a.heads}"`);
if (head === 'gap' && a.heads !== undefined && heads !== 1) fail('--heads applies to a CA head (--head ca-stream or ca-final)');
const { buf, header, dataStart } = readHeader(a.weights);
const lin = family.linear;
const fcKey = [`${lin}.weight`, `module.${lin}.weight`].find((k) => header[k]);
if (!fcKey) fail(`${a.weights}: no ${lin}.weight tensor (expected torchvision ${a.arch} parameter names)`);
if (head !== 'gap') {
  const names = Object.keys(header).map((k) => (k.startsWith('module.') ? k.slice(7) : k));
  if (!names.includes('cls_token')) fail(`${a.weights}: --head ${head} needs a CA-Stream checkpoint, but there is no cls_token`);
  if (head === 'ca-stream' && !names.some((k) => family.blocks.test(k)))
    fail(
      `${a.weights}: no CA-Stream projections (official names such as ${family.linear === 'fc' ? 'base.to_out.1.weight' : 'cls_stream.0.to_out.1.weight'})`,
    );
}
const [fileClasses, inFeatures] = header[fcKey].shape;
const numClasses = a['num-classes'] ? Number(a['num-classes']) : fileClasses;
if (!Number.isInteger(numClasses) || numClasses < 1) fail(`--num-classes must be a positive integer, got "${a['num-classes']}"`);

const target = join(a.out, 'final.safetensors');
if (numClasses === fileClasses) {
  copyFileSync(a.weights, target);
} else {
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__' || name === fcKey || name === fcKey.replace(/weight$/, 'bias')) continue;
    const [s, e] = info.data_offsets;
    tensors[name] = { dtype: info.dtype, shape: info.shape, bytes: buf.subarray(dataStart + s, dataStart + e) };
  }
  const r = rng(Number(a.seed ?? 0));
  const bound = 1 / Math.sqrt(inFeatures);
  const w = new Float32Array(numClasses * inFeatures).map(() => (2 * r() - 1) * bound);
  const b = new Float32Array(numClasses).map(() => (2 * r() - 1) * bound);
  tensors[`${lin}.weight`] = { dtype: 'F32', shape: [numClasses, inFeatures], bytes: Buffer.from(w.buffer) };
  tensors[`${lin}.bias`] = { dtype: 'F32', shape: [numClasses], bytes: Buffer.from(b.buffer) };
  writeSafetensors(target, tensors, { source: String(a.weights), fresh_fc: String(numClasses) });
}

let classes = Array.from({ length: numClasses }, (_, i) => `class_${i}`);
if (a.classes) {
  const list = JSON.parse(readFileSync(a.classes, 'utf8'));
  const names = Array.isArray(list) ? list : list.classes;
  if (!Array.isArray(names)) fail(`${a.classes}: expected a JSON array of class names (or {"classes": [...]})`);
  if (names.length > numClasses)
    fail(`${a.classes}: ${names.length} classes but the classifier has ${numClasses} outputs (set --num-classes)`);
  classes = classes.map((c, i) => (typeof names[i] === 'string' ? names[i] : c));
}
const inputSize = Number(a['input-size'] ?? 224);
const preprocessing = a.preprocessing ?? 'torchvision';
if (preprocessing !== 'torchvision' && preprocessing !== 'fast')
  fail(`--preprocessing must be torchvision or fast, got "${preprocessing}"`);
const card = {
  format: 'ca-pipe.model/1',
  arch: a.arch,
  head,
  heads: head === 'gap' ? 1 : heads,
  num_classes: numClasses,
  input_size: inputSize,
  resize: Number(a.resize ?? Math.floor(inputSize / 0.875)),
  preprocessing,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  classes,
  weights: 'final.safetensors',
  source: String(a.weights),
};
writeFileSync(join(a.out, 'model.json'), JSON.stringify(card, null, 2) + '\n');
process.stdout.write(
  `model-dir: ${a.arch} (${head}), ${numClasses} classes${numClasses !== fileClasses ? ` (fresh classifier, was ${fileClasses})` : ''} → ${a.out}\n`,
);
