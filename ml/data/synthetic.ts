// A synthetic shape-recognition benchmark with ground-truth masks. Each image holds one target
// shape (the label) at a random position, scale, rotation and colour, on a textured background
// with distractors that are never target shapes (thin lines, small dots, small irregular blobs).
// Distractors reuse the target's colour half of the time and backgrounds are drawn independently
// of the label, so only the object's shape identifies the class. Rasterised here (hard edges,
// pixel-centre sampling) so the mask is exactly the set of pixels painted with the object colour,
// and the result is a pure function of (seed, class, index, size): byte-identical across runs.
import { Rng } from './rng.js';

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'cross', 'ring', 'hexagon', 'diamond'] as const;
export type ShapeName = (typeof SHAPES)[number];
export const MAX_SYNTHETIC_CLASSES = SHAPES.length;

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface SyntheticSample {
  /** Interleaved RGB, size×size. */
  rgb: Uint8Array;
  /** 255 on object pixels, 0 elsewhere. */
  mask: Uint8Array;
  /** Tight bounding box of the mask (x, y of the top-left pixel; width, height in pixels). */
  box: Box;
  label: number;
  shape: ShapeName;
  colour: [number, number, number];
}

export interface RenderOptions {
  /** Leave the target out (tests check that the mask is exactly what the object changed). */
  withoutObject?: boolean;
  /** Leave the distractors out (their random draws still happen, so the rest is unchanged). */
  withoutDistractors?: boolean;
  /** `full` (default): striped, value-noise or gradient backgrounds plus 3–8 distractors.
   * `low`: no distractors and no stripes (a striped background becomes flat); same objects,
   * positions and colours as `full`, so masks and boxes are identical. */
  clutter?: Clutter;
}

export type Clutter = 'full' | 'low';
export const CLUTTER_LEVELS: readonly Clutter[] = ['full', 'low'];

type Rgb = [number, number, number];

/** Renders image `index` of class `label` for a dataset seed. */
export function renderSample(seed: number, label: number, index: number, size: number, opts: RenderOptions = {}): SyntheticSample {
  if (!Number.isInteger(label) || label < 0 || label >= SHAPES.length)
    throw new Error(`synthetic: class ${label} out of range [0, ${SHAPES.length})`);
  if (!Number.isInteger(size) || size < 16) throw new Error(`synthetic: size must be an integer ≥ 16, got ${size}`);
  const rng = new Rng(seed, 0x5947, label, index);
  const shape = SHAPES[label]!;
  const n = size * size;
  const rgb = new Uint8Array(n * 3);
  const mask = new Uint8Array(n);

  const colour = hsv(rng.float(), rng.uniform(0.55, 1), rng.uniform(0.55, 1));
  const low = opts.clutter === 'low';
  paintBackground(rgb, size, rng, colour, low);
  paintDistractors(opts.withoutDistractors || low ? new Uint8Array(rgb.length) : rgb, size, rng, colour);

  // Object geometry is drawn even when it is not painted, so the RNG stream stays aligned.
  const r = rng.uniform(0.16, 0.3) * size;
  const cx = rng.uniform(r + 1, size - r - 1);
  const cy = rng.uniform(r + 1, size - r - 1);
  const theta = rng.uniform(0, 2 * Math.PI);
  const inside = shapeTest(shape, cx, cy, r, theta);
  const x0 = Math.max(0, Math.floor(cx - r - 1));
  const x1 = Math.min(size - 1, Math.ceil(cx + r + 1));
  const y0 = Math.max(0, Math.floor(cy - r - 1));
  const y1 = Math.min(size - 1, Math.ceil(cy + r + 1));
  let bx0 = size;
  let by0 = size;
  let bx1 = -1;
  let by1 = -1;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (!inside(x + 0.5, y + 0.5)) continue;
      const p = y * size + x;
      mask[p] = 255;
      if (!opts.withoutObject) {
        rgb[p * 3] = colour[0];
        rgb[p * 3 + 1] = colour[1];
        rgb[p * 3 + 2] = colour[2];
      }
      if (x < bx0) bx0 = x;
      if (x > bx1) bx1 = x;
      if (y < by0) by0 = y;
      if (y > by1) by1 = y;
    }
  }
  if (bx1 < 0) throw new Error(`synthetic: empty object for class ${label} image ${index} (size ${size})`);
  return { rgb, mask, box: { x: bx0, y: by0, w: bx1 - bx0 + 1, h: by1 - by0 + 1 }, label, shape, colour };
}

// ---------------------------------------------------------------------------------------------
// Background: value noise, stripes or a gradient between two colours far from the object's
// colour (so the object stays visible), plus per-pixel grain.

function paintBackground(rgb: Uint8Array, size: number, rng: Rng, avoid: Rgb, noStripes: boolean): void {
  const a = farColour(rng, avoid);
  const b = farColour(rng, avoid);
  const kind = rng.int(3);
  let field: (x: number, y: number) => number;
  if (kind === 0) {
    const g = rng.intIn(3, 7);
    const grid = Float64Array.from({ length: (g + 1) * (g + 1) }, () => rng.float());
    field = (x, y) => {
      const gx = (x / size) * g;
      const gy = (y / size) * g;
      const ix = Math.min(g - 1, Math.floor(gx));
      const iy = Math.min(g - 1, Math.floor(gy));
      const fx = gx - ix;
      const fy = gy - iy;
      const v00 = grid[iy * (g + 1) + ix]!;
      const v10 = grid[iy * (g + 1) + ix + 1]!;
      const v01 = grid[(iy + 1) * (g + 1) + ix]!;
      const v11 = grid[(iy + 1) * (g + 1) + ix + 1]!;
      return (v00 * (1 - fx) + v10 * fx) * (1 - fy) + (v01 * (1 - fx) + v11 * fx) * fy;
    };
  } else if (kind === 1) {
    const ang = rng.uniform(0, Math.PI);
    const period = rng.uniform(0.05, 0.16) * size;
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    const phase = rng.uniform(0, period);
    field = noStripes ? () => 0.5 : (x, y) => (Math.sin((2 * Math.PI * (x * c + y * s + phase)) / period) > 0 ? 1 : 0);
  } else {
    const ang = rng.uniform(0, 2 * Math.PI);
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    field = (x, y) => 0.5 + ((x / size - 0.5) * c + (y / size - 0.5) * s) * 0.7;
  }
  const grain = rng.uniform(4, 14) / 127.5;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = field(x + 0.5, y + 0.5);
      const p = (y * size + x) * 3;
      // One 32-bit draw gives the grain of all three channels (8 bits each).
      const u = rng.nextU32();
      rgb[p] = clampByte(a[0] * (1 - t) + b[0] * t + ((u & 255) - 127.5) * grain);
      rgb[p + 1] = clampByte(a[1] * (1 - t) + b[1] * t + (((u >>> 8) & 255) - 127.5) * grain);
      rgb[p + 2] = clampByte(a[2] * (1 - t) + b[2] * t + (((u >>> 16) & 255) - 127.5) * grain);
    }
  }
}

/** A random colour at RGB distance ≥ 100 from `avoid` (falls back to its complement). */
function farColour(rng: Rng, avoid: Rgb): Rgb {
  for (let i = 0; i < 32; i++) {
    const c = hsv(rng.float(), rng.uniform(0, 1), rng.uniform(0.15, 1));
    if (dist(c, avoid) >= 100) return c;
  }
  return [255 - avoid[0], 255 - avoid[1], 255 - avoid[2]];
}

// ---------------------------------------------------------------------------------------------
// Distractors: none of them can be mistaken for a target (lines are thin, dots tiny, blobs small
// and lumpy), but they share the target's colours.

function paintDistractors(rgb: Uint8Array, size: number, rng: Rng, objectColour: Rgb): void {
  const unit = size / 64;
  const count = rng.intIn(3, 8);
  for (let k = 0; k < count; k++) {
    const c: Rgb = rng.chance(0.5) ? objectColour : hsv(rng.float(), rng.uniform(0.4, 1), rng.uniform(0.4, 1));
    const kind = rng.int(3);
    if (kind === 0) {
      const len = rng.uniform(0.3, 0.9) * size;
      const ang = rng.uniform(0, Math.PI);
      const mx = rng.uniform(0, size);
      const my = rng.uniform(0, size);
      const half = (rng.uniform(0.6, 1.2) * unit) / 2 + 0.25;
      const ax = mx - (Math.cos(ang) * len) / 2;
      const ay = my - (Math.sin(ang) * len) / 2;
      const bx = mx + (Math.cos(ang) * len) / 2;
      const by = my + (Math.sin(ang) * len) / 2;
      fill(
        rgb,
        size,
        c,
        Math.min(ax, bx) - half,
        Math.min(ay, by) - half,
        Math.max(ax, bx) + half,
        Math.max(ay, by) + half,
        (x, y) => segmentDistance(x, y, ax, ay, bx, by) <= half,
      );
    } else if (kind === 1) {
      const r = rng.uniform(0.8, 1.8) * unit;
      const x0 = rng.uniform(0, size);
      const y0 = rng.uniform(0, size);
      fill(rgb, size, c, x0 - r, y0 - r, x0 + r, y0 + r, (x, y) => (x - x0) ** 2 + (y - y0) ** 2 <= r * r);
    } else {
      const r = rng.uniform(0.03, 0.06) * size;
      const x0 = rng.uniform(0, size);
      const y0 = rng.uniform(0, size);
      const lobes = rng.intIn(2, 4);
      const phase = rng.uniform(0, 2 * Math.PI);
      const squash = rng.uniform(0.5, 0.9);
      fill(rgb, size, c, x0 - 1.4 * r, y0 - 1.4 * r, x0 + 1.4 * r, y0 + 1.4 * r, (x, y) => {
        const dx = x - x0;
        const dy = (y - y0) / squash;
        const rr = r * (1 + 0.35 * Math.sin(lobes * Math.atan2(dy, dx) + phase));
        return dx * dx + dy * dy <= rr * rr;
      });
    }
  }
}

function fill(
  rgb: Uint8Array,
  size: number,
  c: Rgb,
  fx0: number,
  fy0: number,
  fx1: number,
  fy1: number,
  inside: (x: number, y: number) => boolean,
): void {
  const x0 = Math.max(0, Math.floor(fx0));
  const y0 = Math.max(0, Math.floor(fy0));
  const x1 = Math.min(size - 1, Math.ceil(fx1));
  const y1 = Math.min(size - 1, Math.ceil(fy1));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (!inside(x + 0.5, y + 0.5)) continue;
      const p = (y * size + x) * 3;
      rgb[p] = c[0];
      rgb[p + 1] = c[1];
      rgb[p + 2] = c[2];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Target shapes, each scaled to circumradius r around (cx, cy) and rotated by theta.

function shapeTest(shape: ShapeName, cx: number, cy: number, r: number, theta: number): (x: number, y: number) => boolean {
  switch (shape) {
    case 'circle':
      return (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
    case 'ring': {
      const inner = 0.55 * r;
      return (x, y) => {
        const d = (x - cx) ** 2 + (y - cy) ** 2;
        return d <= r * r && d >= inner * inner;
      };
    }
    case 'square':
      return polygonTest(
        place(
          [
            [-0.72, -0.72],
            [0.72, -0.72],
            [0.72, 0.72],
            [-0.72, 0.72],
          ],
          cx,
          cy,
          r,
          theta,
        ),
      );
    case 'triangle':
      return polygonTest(place(regular(3, 1), cx, cy, r, theta));
    case 'hexagon':
      return polygonTest(place(regular(6, 1), cx, cy, r, theta));
    case 'diamond':
      return polygonTest(
        place(
          [
            [1, 0],
            [0, 0.55],
            [-1, 0],
            [0, -0.55],
          ],
          cx,
          cy,
          r,
          theta,
        ),
      );
    case 'star': {
      const pts: [number, number][] = [];
      for (let i = 0; i < 10; i++) {
        const rad = i % 2 === 0 ? 1 : 0.42;
        const a = -Math.PI / 2 + (i * Math.PI) / 5;
        pts.push([rad * Math.cos(a), rad * Math.sin(a)]);
      }
      return polygonTest(place(pts, cx, cy, r, theta));
    }
    case 'cross': {
      const t = 0.3;
      const pts: [number, number][] = [
        [-t, -1],
        [t, -1],
        [t, -t],
        [1, -t],
        [1, t],
        [t, t],
        [t, 1],
        [-t, 1],
        [-t, t],
        [-1, t],
        [-1, -t],
        [-t, -t],
      ];
      return polygonTest(place(pts, cx, cy, r, theta));
    }
  }
}

function regular(k: number, rad: number): [number, number][] {
  return Array.from({ length: k }, (_, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / k;
    return [rad * Math.cos(a), rad * Math.sin(a)] as [number, number];
  });
}

function place(pts: [number, number][], cx: number, cy: number, r: number, theta: number): [number, number][] {
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  return pts.map(([u, v]) => [cx + r * (u * c - v * s), cy + r * (u * s + v * c)]);
}

/** Even-odd rule point-in-polygon. */
function polygonTest(pts: [number, number][]): (x: number, y: number) => boolean {
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const n = pts.length;
  return (x, y) => {
    let inside = false;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const yi = ys[i]!;
      const yj = ys[j]!;
      if (yi > y !== yj > y) {
        const xCross = xs[i]! + ((y - yi) * (xs[j]! - xs[i]!)) / (yj - yi);
        if (x < xCross) inside = !inside;
      }
    }
    return inside;
  };
}

function segmentDistance(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

function hsv(h: number, s: number, v: number): Rgb {
  const i = Math.floor(h * 6) % 6;
  const f = h * 6 - Math.floor(h * 6);
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const [r, g, b] = [
    [v, t, p],
    [q, v, p],
    [p, v, t],
    [p, q, v],
    [t, p, v],
    [v, p, q],
  ][i]!;
  return [clampByte(r! * 255), clampByte(g! * 255), clampByte(b! * 255)];
}

function dist(a: Rgb, b: Rgb): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
