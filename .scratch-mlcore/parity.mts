import { initBackend, tf } from '../ml/backend/index.js';
import { readSafetensors } from '../ml/io/safetensors.js';
import { createModel } from '../ml/models/index.js';
const be = process.argv[2] ?? 'wasm';
await initBackend(be as any);
const W = await readSafetensors('/work/shared/fixtures/resnet-basic-1111.weights.safetensors');
const E = await readSafetensors('/work/shared/fixtures/resnet-basic-1111.expected.safetensors');
const inp = E.tensors.get('input')!;
const x = tf.transpose(tf.tensor4d(inp.data as Float32Array, inp.shape as any), [0,2,3,1]) as tf.Tensor4D;
const cmp = (name: string, t: tf.Tensor, nchw = true) => {
  const ref = E.tensors.get(name)!;
  const a = (nchw && t.rank === 4 ? tf.transpose(t, [0,3,1,2]) : t).dataSync();
  let worst = 0; 
  (ref.data as Float32Array).forEach((r, i) => { worst = Math.max(worst, Math.abs(a[i]-r)/Math.max(1,Math.abs(r))); });
  console.log(name, JSON.stringify(ref.shape), JSON.stringify(t.shape), worst.toExponential(2));
};
for (const heads of [1,4]) {
  const m = createModel({ arch: 'resnet-basic-1111', head: 'ca-stream', heads, numClasses: 10 });
  console.log(m.loadWeights(W.tensors, { file: 'w' }).loaded.length);
  const t0 = Date.now();
  const out = m.forward(x);
  console.log('ms', Date.now()-t0);
  if (heads === 1) { for (const k of ['stem','layer1','layer2','layer3','layer4'] as const) cmp(`tap.${k}`, out.taps[k]); cmp('logits.gap', out.logitsGap); }
  for (const k of ['stem','layer1','layer2','layer3','layer4'] as const) cmp(`heads${heads}.attn.${k}`, out.dots[k]!, false);
  cmp(`heads${heads}.cls.final`, out.token); cmp(`heads${heads}.logits.ca`, out.logits);
  const unf = m.forward(x, { fold: false });
  cmp(`heads${heads}.logits.ca`, unf.logits);
}
