// The CA block's attention pooling (design §3), with a hand-written gradient (design §6).
// For a feature map F (N positions × C channels, channels split into h groups of d = C/h) and a
// token q ∈ R^C:  dots_g = F_g q_g / √C (full C for any h),  a_g = softmax_N(dots_g),  z_g = F_gᵀ a_g.
//
// Layout choices come from measurements on tfjs-wasm (ResNet-50 layer1 tap, batch 16): its matMul
// is fast for one query row against F ([B,1,C]·Fᵀ, [B,1,N]·F: ~25 ms) but slow for skinny
// products with several rows or rank-1 outer products (h=8 rows: ~190 ms; outer product: ~220 ms),
// and transposing F costs about as much. So with one head we use matMuls; with h > 1 we stay in
// F's own layout: scores = Σ_d (F ⊙ q) over each group (elementwise product + last-axis sum), and
// pooling = 1ᵀ·(F ⊙ a expanded over each group's channels) (a single-row matMul). Outer products
// in the tap gradient are broadcast multiplications.
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

function checkHeads(heads: number, channels: number): void {
  if (!Number.isInteger(heads) || heads < 1 || channels % heads !== 0) {
    throw new Error(`attention heads (${heads}) must be a positive integer dividing the channel count (${channels})`);
  }
}

/** Per-group inner products of each position with v: [B,N,C] × [B,C] → [B,h,N]. */
function groupScores(F: tf.Tensor3D, v: tf.Tensor2D, h: number): tf.Tensor3D {
  const [B, N, C] = F.shape;
  if (h === 1) return tf.matMul(tf.reshape(v, [B, 1, C]), F, false, true) as tf.Tensor3D;
  const s = tf.sum(tf.reshape(tf.mul(F, tf.reshape(v, [B, 1, C])), [B, N, h, C / h]), -1); // [B, N, h]
  return tf.transpose(s, [0, 2, 1]) as tf.Tensor3D;
}

/** Per-group weighted sums over positions: weights [B,h,N], F [B,N,C] → [B,C]. */
function groupPool(w: tf.Tensor3D, F: tf.Tensor3D, h: number): tf.Tensor2D {
  const [B, N, C] = F.shape;
  if (h === 1) return tf.reshape(tf.matMul(w, F), [B, C]) as tf.Tensor2D;
  const wE = tf.reshape(tf.transpose(w, [0, 2, 1]), [B, N, h, 1]);
  const prod = tf.reshape(tf.mul(tf.reshape(F, [B, N, h, C / h]), wE), [B, N, C]);
  return tf.reshape(tf.matMul(tf.ones([B, 1, N]), prod), [B, C]) as tf.Tensor2D;
}

/** Σ_k u_k ⊗ v_k per group: u [B,h,N] with v [B,C] → [B,N,C], entry (n,c) = u[g(c), n]·v[c]. */
function groupOuter(u: tf.Tensor3D, v: tf.Tensor2D, h: number): tf.Tensor3D {
  const [B, , N] = u.shape;
  const C = v.shape[1];
  const uE = tf.reshape(tf.transpose(u, [0, 2, 1]), [B, N, h, 1]);
  return tf.reshape(tf.mul(uE, tf.reshape(v, [B, 1, h, C / h])), [B, N, C]) as tf.Tensor3D;
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
  const mask = opts.dropMask;
  const tapGrad = opts.tapGrad ?? true;
  const F3 = tf.reshape(F, [B, N, C]) as tf.Tensor3D;

  const forward = (qq: tf.Tensor2D, FF: tf.Tensor3D, save: tf.GradSaveFunc) => {
    const dots = tf.mul(groupScores(FF, qq, h), scale) as tf.Tensor3D; // [B, h, N]
    const a = tf.softmax(dots) as tf.Tensor3D;
    const z = groupPool(mask ? tf.mul(a, mask) : a, FF, h);
    // Everything the backward pass reads must go through save(): tensors created inside tf.grads'
    // forward scope are disposed before the backward pass runs.
    save(mask ? [a, qq, FF, mask] : [a, qq, FF]);
    // customGrad carries one output: pack z and dots side by side and split them afterwards.
    const value = tf.concat([z, tf.reshape(dots, [B, h * N])], 1);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sq, sF, sm] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor3D, tf.Tensor3D | undefined];
      const gz = tf.slice(dy, [0, 0], [B, C]) as tf.Tensor2D;
      const gdExt = tf.reshape(tf.slice(dy, [0, C], [B, h * N]), [B, h, N]);
      let ga = groupScores(sF, gz, h); // ∂/∂(attention weights after dropout), [B, h, N]
      if (sm) ga = tf.mul(ga, sm);
      const gdots = tf.add(tf.mul(sa, tf.sub(ga, tf.sum(tf.mul(sa, ga), -1, true))), gdExt);
      const gs = tf.mul(gdots, scale) as tf.Tensor3D;
      const dq = groupPool(gs, sF, h);
      if (!tapGrad) return [dq];
      const dF = tf.add(groupOuter(sm ? (tf.mul(sa, sm) as tf.Tensor3D) : sa, gz, h), groupOuter(gs, sq, h));
      return [dq, dF];
    };
    return { value, gradFunc };
  };

  // customGrad's typings insist the gradient is typed like the output; ours is one tensor per input.
  type Op = (...args: tf.Tensor[]) => tf.Tensor;
  const packed = tapGrad
    ? (
        tf.customGrad(((qq: tf.Tensor, FF: tf.Tensor, save: tf.GradSaveFunc) =>
          forward(qq as tf.Tensor2D, FF as tf.Tensor3D, save)) as any) as Op
      )(q, F3)
    : (tf.customGrad(((qq: tf.Tensor, save: tf.GradSaveFunc) => forward(qq as tf.Tensor2D, F3, save)) as any) as Op)(q);
  const z = tf.slice(packed, [0, 0], [B, C]) as tf.Tensor2D;
  const dots = tf.reshape(tf.slice(packed, [0, C], [B, h * N]), [B, h, N]) as tf.Tensor3D;
  return { z, dots };
}

/**
 * The same block written the obvious way (per-head transposes of F, plain autodiff): the
 * reference the hand-written gradient is tested against.
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
