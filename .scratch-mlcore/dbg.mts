import { initBackend, setBackendLogger, tf } from '../ml/backend/index.js';
import { createModel } from '../ml/models/index.js';
setBackendLogger(()=>{}); await initBackend('wasm');
const m = createModel({ arch: 'resnet-mini-bottleneck', head: 'ca-stream', heads: 2, numClasses: 4, seed: 4 });
const xin = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 6) as tf.Tensor4D;
const o = m.forward(xin, { training: true });
for (const [k, d] of Object.entries(o.dots)) { const v = d!.dataSync(); console.log(k, d!.shape, Math.min(...v), Math.max(...v)); }
const vars = m.trainableVariables('finetune');
const { grads } = tf.variableGrads(() => tf.sum(tf.square(m.forward(xin, { training: true }).logits)) as tf.Scalar, [...vars.values()]);
for (const [k, v] of vars) { const g = grads[v.name]; if (!g) { console.log('nog', k); continue; } const a = g.dataSync(); const mx = Math.max(...Array.from(a).map(Math.abs)); if (mx === 0) console.log('zero', k); }
const g2 = tf.grad((t: tf.Tensor) => { const p = m.headParams(); return tf.sum(tf.square(tf.tidy(() => { const taps = m.backbone(xin); return (m as any).head(taps).logits; }))); });
