// The CA block's attention pooling (design §3), with a hand-written gradient (design §6).
// For a feature map F (N positions × C channels, channels split into h groups of d = C/h) and a
// token q ∈ R^C:  dots_g = F_g q_g / √C (full C for any h),  a_g = softmax_N(dots_g),  z_g = F_gᵀ a_g.
//
// Groups are handled without transposing F (the big tensor): the token is spread into a block-
// diagonal [h, C] matrix Q (row g holds q_g in group g's columns, zeros elsewhere), so
// dots = Q·Fᵀ is one batched matMul; likewise z = Σ_g M ⊙ (a·F) with M the 0/1 group mask.
// This costs h× the minimal FLOPs of those products, which is cheap next to reshuffling F.
import * as tf from '@tensorflow/tfjs-core';

export interface PoolResult {
  /** Pooled features z, [B, C]. */
  z: tf.Tensor2D;
  /** Pre-softmax scaled scores, [B, h, N]. */
  dots: tf.Tensor3D;
}

export interface PoolOptions {
  /**
   * Whether the gradient with respect to F is needed (backbone training, or a saliency method
   * asking for ∂/∂tap). When false, F enters as a constant: asking for its gradient is an error
   * instead of a silent zero, and the backward pass skips the [B, N, C] products.
   */
  tapGrad?: boolean;
  /** Dropout keep-mask on the attention weights, already scaled by 1/(1-p): [B, h, N]. */
  dropMask?: tf.Tensor3D;
}

const maskCache = new Map<string, tf.Tensor3D>();

/** [1, h, C] 0/1 mask: row g is 1 on group g's channels. Cached per (h, C, backend). */
export function groupMask(heads: number, channels: number): tf.Tensor3D {
  const key = `${heads}/${channels}/${tf.getBackend()}`;
  let m = maskCache.get(key);
  if (!m || m.isDisposed) {
    const d = channels / heads;
    const data = new Float32Array(heads * channels);
    for (let g = 0; g < heads; g++) data.fill(1, g * channels + g * d, g * channels + (g + 1) * d);
    m = tf.keep(tf.tensor3d(data, [1, heads, channels]));
    maskCache.set(key, m);
  }
  return m;
}

function checkHeads(heads: number, channels: number): void {
  if (!Number.isInteger(heads) || heads < 1 || channels % heads !== 0) {
    throw new Error(`attention heads (${heads}) must be a positive integer dividing the channel count (${channels})`);
  }
}

/**
 * Attention pooling of F ([B, N, C] or [B, H, W, C]) with token q ([B, C]) over `heads` groups.
 * Differentiable with respect to q (always) and F (when tapGrad is true, the default).
 */
export function attentionPool(F: tf.Tensor, q: tf.Tensor2D, heads: number, opts: PoolOptions = {}): PoolResult {
  const B = F.shape[0];
  const C = F.shape[F.rank - 1];
  const N = F.size / (B * C);
  checkHeads(heads, C);
  if (q.shape[0] !== B || q.shape[1] !== C) throw new Error(`token shape [${q.shape}] does not match features [${B}, …, ${C}]`);
  const h = heads;
  const scale = 1 / Math.sqrt(C);
  const M = h > 1 ? groupMask(h, C) : undefined;
  const spread = (v: tf.Tensor2D): tf.Tensor3D => {
    const v3 = tf.reshape(v, [B, 1, C]) as tf.Tensor3D;
    return M ? tf.mul(v3, M) : v3;
  };
  const gather = (m: tf.Tensor3D): tf.Tensor2D => (M ? tf.sum(tf.mul(m, M), 1) : tf.reshape(m, [B, C]));
  const mask = opts.dropMask;
  const tapGrad = opts.tapGrad ?? true;
  const F3 = tf.reshape(F, [B, N, C]) as tf.Tensor3D;

  const forward = (qq: tf.Tensor2D, FF: tf.Tensor3D, save: tf.GradSaveFunc) => {
    const Qt = spread(qq);
    const dots = tf.mul(tf.matMul(Qt, FF, false, true), scale) as tf.Tensor3D; // [B, h, N]
    const a = tf.softmax(dots) as tf.Tensor3D;
    const ad = mask ? tf.mul(a, mask) : a;
    const z = gather(tf.matMul(ad, FF) as tf.Tensor3D);
    // Everything the backward pass reads must go through save(): tensors created inside tf.grads'
    // forward scope are disposed before the backward pass runs.
    save(mask ? [a, qq, FF, mask] : [a, qq, FF]);
    // customGrad carries one output: pack z and dots side by side and split them afterwards.
    const value = tf.concat([z, tf.reshape(dots, [B, h * N])], 1);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sq, sF, sm] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor3D, tf.Tensor3D | undefined];
      const gz = tf.slice(dy, [0, 0], [B, C]) as tf.Tensor2D;
      const gdExt = tf.reshape(tf.slice(dy, [0, C], [B, h * N]), [B, h, N]);
      const Gt = spread(gz);
      let ga = tf.matMul(Gt, sF, false, true); // ∂/∂(attention weights after dropout)
      if (sm) ga = tf.mul(ga, sm);
      const gdots = tf.add(tf.mul(sa, tf.sub(ga, tf.sum(tf.mul(sa, ga), -1, true))), gdExt);
      const gs = tf.mul(gdots, scale) as tf.Tensor3D;
      const dq = gather(tf.matMul(gs, sF) as tf.Tensor3D);
      if (!tapGrad) return [dq];
      const sad = sm ? tf.mul(sa, sm) : sa;
      const dF = tf.add(tf.matMul(sad, Gt, true, false), tf.matMul(gs, spread(sq), true, false));
      return [dq, dF];
    };
    return { value, gradFunc };
  };

  // customGrad's typings insist the gradient is typed like the output; ours is one tensor per input.
  type Op = (...args: tf.Tensor[]) => tf.Tensor;
  const packed = tapGrad
    ? (tf.customGrad(((qq: tf.Tensor, FF: tf.Tensor, save: tf.GradSaveFunc) => forward(qq as tf.Tensor2D, FF as tf.Tensor3D, save)) as any) as Op)(q, F3)
    : (tf.customGrad(((qq: tf.Tensor, save: tf.GradSaveFunc) => forward(qq as tf.Tensor2D, F3, save)) as any) as Op)(q);
  const z = tf.slice(packed, [0, 0], [B, C]) as tf.Tensor2D;
  const dots = tf.reshape(tf.slice(packed, [0, C], [B, h * N]), [B, h, N]) as tf.Tensor3D;
  return { z, dots };
}

/**
 * The same block written the obvious way (per-head transposes, plain autodiff). Used as the
 * reference in tests; slower to differentiate.
 */
export function attentionPoolNaive(F: tf.Tensor, q: tf.Tensor2D, heads: number, dropMask?: tf.Tensor3D): PoolResult {
  const B = F.shape[0];
  const C = F.shape[F.rank - 1];
  const N = F.size / (B * C);
  checkHeads(heads, C);
  const d = C / heads;
  const Fg = tf.transpose(tf.reshape(F, [B, N, heads, d]), [0, 2, 1, 3]); // [B, h, N, d]
  const qg = tf.reshape(q, [B, heads, d, 1]);
  const dots = tf.reshape(tf.div(tf.matMul(Fg, qg), Math.sqrt(C)), [B, heads, N]) as tf.Tensor3D;
  let a: tf.Tensor = tf.softmax(dots);
  if (dropMask) a = tf.mul(a, dropMask);
  const z = tf.matMul(tf.reshape(a, [B, heads, 1, N]), Fg); // [B, h, 1, d]
  return { z: tf.reshape(z, [B, C]) as tf.Tensor2D, dots };
}
