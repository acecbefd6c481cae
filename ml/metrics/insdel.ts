// Insertion and deletion (RISE, Petsiuk et al. 2018), batched across images.
//
// Each image yields two sequences of n+1 states (n = ceil(H·W/step)): state t has the first t·step
// pixels of the saliency order (all channels) taken from the finish image, the rest from the start image.
// Deletion: start = image, finish = deletion substrate. Insertion: start = insertion start (blur),
// finish = image. States of several images are packed into batches of up to maxBatch for the score
// function; each state is built from the previous one (copy + `step` pixel writes), and the next batch
// is built while the previous one is being scored (two alternating buffers, nothing allocated per step).
//
// Differences from the original code (deliberate): ties in the saliency order are broken by raster
// index (the original's NumPy quicksort left them arbitrary); AUCs are per image (the original took the
// AUC of each batch's mean curve and then averaged batches, which weighs a short last batch like a full
// one); the insertion end state equals the clean image, so its score is reused from deletion's start
// instead of being computed twice.
import { blurImage, gaussianBlurKernel, type Kernel2d } from './blur.js';
import { classifyMap, saliencyToImage, type MapStatus } from './maps.js';
import { stepCount, stepPixels, type Protocol, type Substrate } from './protocol.js';
import { argmaxRow, checkTarget, classesOf, type ImageDims, type ScoredMaps } from './score.js';

/** Trapezoid AUC over n+1 equally spaced points on [0,1]: (Σ s − s0/2 − sn/2)/n. */
export function trapezoidAuc(curve: ArrayLike<number>, offset = 0, points = curve.length - offset): number {
  const n = points - 1;
  if (n < 1) throw new Error(`trapezoidAuc: a curve needs at least 2 points, got ${points}`);
  let s = 0;
  for (let i = 0; i < points; i++) s += curve[offset + i];
  return (s - curve[offset] / 2 - curve[offset + n] / 2) / n;
}

/**
 * Pixel indices sorted by decreasing saliency, ties by increasing index (deterministic; −0 equals +0).
 * `map` is read from `offset` for `size` values and must be free of NaN (classify first).
 * A stable LSD radix sort on order-preserving integer keys of the float32 values: O(n), and ties keep
 * their raster order without a comparator.
 */
export function pixelOrder(map: Float32Array, offset = 0, size = map.length - offset, out?: Uint32Array): Uint32Array {
  const order = out ?? new Uint32Array(size);
  if (order.length !== size) throw new Error(`pixelOrder: output buffer has ${order.length} slots, expected ${size}`);
  const s = radixScratch(size);
  const bits = new Uint32Array(map.buffer, map.byteOffset + offset * 4, size);
  for (let i = 0; i < size; i++) {
    let u = map[offset + i] === 0 ? 0 : bits[i];
    // ascending-order key (flip negatives entirely, set the sign bit of positives), inverted for descending
    u = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
    s.keys[i] = ~u >>> 0;
    order[i] = i;
  }
  let srcIdx = order;
  let dstIdx = s.idx;
  let srcKey = s.keys;
  let dstKey = s.keys2;
  const count = s.count;
  for (let shift = 0; shift < 32; shift += 8) {
    count.fill(0);
    for (let i = 0; i < size; i++) count[((srcKey[i] >>> shift) & 255) + 1]++;
    for (let b = 0; b < 256; b++) count[b + 1] += count[b];
    for (let i = 0; i < size; i++) {
      const d = count[(srcKey[i] >>> shift) & 255]++;
      dstIdx[d] = srcIdx[i];
      dstKey[d] = srcKey[i];
    }
    [srcIdx, dstIdx] = [dstIdx, srcIdx];
    [srcKey, dstKey] = [dstKey, srcKey];
  }
  // 4 passes (even) → the result is back in `order`.
  return order;
}

let scratch: { keys: Uint32Array; keys2: Uint32Array; idx: Uint32Array; count: Uint32Array } | null = null;
function radixScratch(n: number) {
  if (!scratch || scratch.keys.length < n)
    scratch = { keys: new Uint32Array(n), keys2: new Uint32Array(n), idx: new Uint32Array(n), count: new Uint32Array(257) };
  if (scratch.keys.length === n) return scratch;
  return { keys: scratch.keys.subarray(0, n), keys2: scratch.keys2.subarray(0, n), idx: scratch.idx.subarray(0, n), count: scratch.count };
}

export interface InsDelOptions extends ScoredMaps {
  /** Dataset normalisation; needed only for a `black` substrate. */
  mean?: ArrayLike<number>;
  std?: ArrayLike<number>;
}

export interface InsDelCurves {
  /** N × (steps+1) target probabilities, row-major. NaN rows for images whose map is `nan`. */
  curves: Float64Array;
  /** Per-image AUC (fraction in [0,1]). */
  auc: Float64Array;
}

export interface InsDelResult {
  /** Pixels moved per step and number of steps n (curves have n+1 points). */
  step: number;
  steps: number;
  targets: Int32Array;
  /** Target probability on the clean image. */
  p: Float64Array;
  statuses: MapStatus[];
  deletion: InsDelCurves;
  insertion: InsDelCurves;
}

const DEL = 0;
const INS = 1;

/** Insertion and deletion curves and AUCs for a set of images (see the file header). */
export async function insertionDeletion(o: InsDelOptions): Promise<InsDelResult> {
  const { c, h, w } = o.dims;
  const N = o.images.length / (c * h * w);
  if (!Number.isInteger(N) || N < 1)
    throw new Error(`insertionDeletion: ${o.images.length} image values are not whole ${c}×${h}×${w} images`);
  const proto = o.protocol;
  const sal = prepareSaliency(o, N, h, w);
  if (proto.target === 'gt' && (!o.targets || o.targets.length !== N))
    throw new Error(`insertionDeletion: protocol "${proto.name}" scores the ground truth, so ${N} targets are needed`);
  const run = new InsDelRun(o, N, sal);
  await run.scoreAll();
  return run.result();
}

/** Which image, curve and step each slot of a batch holds. */
interface BatchMeta {
  img: Int32Array;
  kind: Uint8Array;
  t: Int32Array;
  count: number;
}

/** One call's state: the work list, the two batch buffers, the cursor over states and the curves filled so far. */
class InsDelRun {
  private readonly c: number;
  private readonly hw: number;
  private readonly chw: number;
  private readonly N: number;
  private readonly step: number;
  private readonly n: number;
  private readonly statuses: MapStatus[] = [];
  private readonly targets: Int32Array;
  private readonly p: Float64Array;
  private readonly del: Float64Array;
  private readonly ins: Float64Array;
  private readonly substrates: SubstrateMaker;
  private readonly order: Uint32Array;
  /** Images with a usable map: for each, deletion t = 0..n then insertion t = 0..n−1. */
  private readonly todo: number[] = [];
  private readonly total: number;
  private readonly cap: number;
  private readonly bufs: Float32Array[];
  private readonly metas: BatchMeta[];

  // Cursor over the work list; `prev` is the last built state (it may live in the other buffer, which
  // is never overwritten before the batch built after it has been handed to the score function).
  private ti = 0;
  private kind = DEL;
  private t = 0;
  private prev: Float32Array | null = null;
  private startIns: Float32Array | null = null;
  private finishDel: Float32Array | null = null;
  private image: Float32Array | null = null;
  private done = 0;

  constructor(
    private readonly o: InsDelOptions,
    N: number,
    private readonly sal: Float32Array,
  ) {
    const { c, h, w } = o.dims;
    const proto = o.protocol;
    this.c = c;
    this.hw = h * w;
    this.chw = c * this.hw;
    this.N = N;
    this.step = stepPixels(proto, h, w);
    const n = (this.n = stepCount(proto, h, w));
    for (let i = 0; i < N; i++) this.statuses.push(classifyMap(sal, proto.degenerate.constantRelTol, i * this.hw, this.hw));

    this.targets = new Int32Array(N).fill(-1);
    if (proto.target === 'gt') for (let i = 0; i < N; i++) this.targets[i] = Number(o.targets![i]);
    this.p = new Float64Array(N).fill(NaN);
    this.del = new Float64Array(N * (n + 1)).fill(NaN);
    this.ins = new Float64Array(N * (n + 1)).fill(NaN);

    this.substrates = new SubstrateMaker(proto, o.dims, o.mean, o.std);
    this.order = new Uint32Array(this.hw);

    for (let i = 0; i < N; i++) if (this.statuses[i] !== 'nan') this.todo.push(i);
    const perImage = 2 * n + 1;
    this.total = this.todo.length * perImage;

    const cap = (this.cap = Math.max(1, Math.min(Math.floor(o.maxBatch ?? 32), this.total || 1)));
    this.bufs = [new Float32Array(cap * this.chw), new Float32Array(cap * this.chw)];
    this.metas = [0, 1].map(() => ({ img: new Int32Array(cap), kind: new Uint8Array(cap), t: new Int32Array(cap), count: 0 }));
  }

  /** One score call in flight at a time; the next batch is built into the other buffer meanwhile. */
  async scoreAll(): Promise<void> {
    const { bufs, metas } = this;
    let which = 0;
    if (this.ti < this.todo.length) {
      this.build(bufs[which], metas[which]);
      let res = this.launch(which);
      for (;;) {
        const more = this.ti < this.todo.length;
        if (more) this.build(bufs[which ^ 1], metas[which ^ 1]);
        this.consume(await res, metas[which]);
        if (!more) break;
        which ^= 1;
        res = this.launch(which);
      }
    }
  }

  result(): InsDelResult {
    const { N, n, p, del, ins } = this;
    const delAuc = new Float64Array(N).fill(NaN);
    const insAuc = new Float64Array(N).fill(NaN);
    for (const i of this.todo) {
      ins[i * (n + 1) + n] = p[i];
      delAuc[i] = trapezoidAuc(del, i * (n + 1), n + 1);
      insAuc[i] = trapezoidAuc(ins, i * (n + 1), n + 1);
    }
    return {
      step: this.step,
      steps: n,
      targets: this.targets,
      p,
      statuses: this.statuses,
      deletion: { curves: del, auc: delAuc },
      insertion: { curves: ins, auc: insAuc },
    };
  }

  private beginImage(i: number): void {
    const { chw, hw } = this;
    const insdel = this.o.protocol.insdel;
    const image = (this.image = this.o.images.subarray(i * chw, (i + 1) * chw));
    pixelOrder(this.sal, i * hw, hw, this.order);
    const s = this.substrates.forImage(image);
    this.startIns = s.get(insdel.insertionStart);
    this.finishDel = s.get(insdel.deletionSubstrate);
  }

  private build(buf: Float32Array, meta: BatchMeta): void {
    const { c, hw, chw, step, n, cap, todo, order } = this;
    let slot = 0;
    while (slot < cap && this.ti < todo.length) {
      const i = todo[this.ti];
      const { kind, t } = this;
      if (kind === DEL && t === 0) this.beginImage(i);
      const dst = buf.subarray(slot * chw, (slot + 1) * chw);
      if (t === 0) dst.set(kind === DEL ? this.image! : this.startIns!);
      else {
        dst.set(this.prev!);
        const fin = kind === DEL ? this.finishDel! : this.image!;
        const end = Math.min(t * step, hw);
        for (let q = (t - 1) * step; q < end; q++) {
          const px = order[q];
          for (let ch = 0, off = px; ch < c; ch++, off += hw) dst[off] = fin[off];
        }
      }
      this.prev = dst;
      meta.img[slot] = i;
      meta.kind[slot] = kind;
      meta.t[slot] = t;
      slot++;
      // Advance: deletion 0..n, insertion 0..n−1 (insertion's state n is the clean image).
      this.t++;
      if (this.kind === DEL && this.t > n) {
        this.kind = INS;
        this.t = 0;
      } else if (this.kind === INS && this.t >= n) {
        this.kind = DEL;
        this.t = 0;
        this.ti++;
      }
    }
    meta.count = slot;
  }

  private launch(which: number): Promise<Float32Array> {
    const { o, metas } = this;
    o.signal?.throwIfAborted();
    const res = o.score(this.bufs[which].subarray(0, metas[which].count * this.chw), metas[which].count);
    res.catch(() => {}); // rethrown when awaited below; avoids an unhandled rejection while building
    return res;
  }

  private consume(probs: Float32Array, meta: BatchMeta): void {
    const { n, targets, p } = this;
    const k = classesOf(probs, meta.count);
    for (let r = 0; r < meta.count; r++) {
      const i = meta.img[r];
      const tt = meta.t[r];
      if (meta.kind[r] === DEL && tt === 0) {
        if (this.o.protocol.target === 'pred') targets[i] = argmaxRow(probs, r, k);
        checkTarget(targets[i], k, i);
        p[i] = probs[r * k + targets[i]];
      }
      const v = probs[r * k + targets[i]];
      (meta.kind[r] === DEL ? this.del : this.ins)[i * (n + 1) + tt] = v;
    }
    this.done += meta.count;
    this.o.onProgress?.(this.done, this.total);
  }
}

/**
 * Mean curve over the images whose map status is accepted (by default `ok` only; pass
 * includeConstant for baselines). Its trapezoid AUC equals the mean of the per-image AUCs.
 */
export function meanCurve(c: InsDelCurves, statuses: readonly MapStatus[], opts: { includeConstant?: boolean } = {}): Float64Array {
  const N = statuses.length;
  const points = c.curves.length / N;
  if (!Number.isInteger(points)) throw new Error(`meanCurve: ${c.curves.length} curve values do not split into ${N} images`);
  const out = new Float64Array(points);
  let used = 0;
  for (let i = 0; i < N; i++) {
    if (statuses[i] === 'nan' || (statuses[i] === 'constant' && !opts.includeConstant)) continue;
    for (let t = 0; t < points; t++) out[t] += c.curves[i * points + t];
    used++;
  }
  for (let t = 0; t < points; t++) out[t] = used ? out[t] / used : NaN;
  return out;
}

function prepareSaliency(o: InsDelOptions, N: number, h: number, w: number): Float32Array {
  const sz = o.saliencySize ?? { h, w };
  if (o.saliency.length !== N * sz.h * sz.w)
    throw new Error(`insertionDeletion: saliency has ${o.saliency.length} values, expected ${N}×${sz.h}×${sz.w}`);
  if (sz.h === h && sz.w === w && !o.protocol.saliency.renormalise) return o.saliency;
  return saliencyToImage(o.saliency, N, sz.h, sz.w, h, w, o.protocol);
}

/** Substrate images for the current image; constant substrates are built once, blur once per image. */
class SubstrateMaker {
  private zeros: Float32Array | null = null;
  private black: Float32Array | null = null;
  private blurred: Float32Array | null = null;
  private kernel: Kernel2d | null = null;
  private current: Float32Array | null = null;

  constructor(
    private readonly proto: Protocol,
    private readonly dims: ImageDims,
    private readonly mean?: ArrayLike<number>,
    private readonly std?: ArrayLike<number>,
  ) {
    const uses = [proto.insdel.insertionStart, proto.insdel.deletionSubstrate];
    if (uses.includes('black') && (!mean || !std || mean.length !== dims.c || std.length !== dims.c))
      throw new Error(`insertionDeletion: a "black" substrate needs the dataset mean and std (${dims.c} channels each)`);
  }

  forImage(image: Float32Array): { get(s: Substrate): Float32Array } {
    this.current = image;
    const needBlur = this.proto.insdel.insertionStart === 'blur' || this.proto.insdel.deletionSubstrate === 'blur';
    if (needBlur) {
      const b = this.proto.insdel.blur;
      this.kernel ??= gaussianBlurKernel(b.size, b.sigma, b.truncate);
      this.blurred ??= new Float32Array(image.length);
      blurImage(image, { n: 1, ...this.dims }, this.kernel, b.padding, this.blurred);
    }
    return { get: (s) => this.get(s) };
  }

  private get(s: Substrate): Float32Array {
    const { c, h, w } = this.dims;
    const len = c * h * w;
    switch (s) {
      case 'zeros':
        return (this.zeros ??= new Float32Array(len));
      case 'black':
        if (!this.black) {
          this.black = new Float32Array(len);
          for (let ch = 0; ch < c; ch++) this.black.fill(-this.mean![ch] / this.std![ch], ch * h * w, (ch + 1) * h * w);
        }
        return this.black;
      case 'blur':
        if (!this.blurred || !this.current) throw new Error('insertionDeletion: blur substrate requested before an image');
        return this.blurred;
    }
  }
}
