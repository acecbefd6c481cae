import { initBackend, tf } from '../ml/backend/index.js';
await initBackend('wasm');
const x0 = tf.randomNormal([1,1,9,9,3], 0, 1, 'float32', 1); const dy0 = tf.randomNormal([1,1,4,4,4],0,1,'float32',2);
const res: any = {};
for (const b of ['wasm','cpu']) { await tf.setBackend(b);
  const x = tf.tensor(x0.dataSync(), x0.shape); const dy = tf.tensor(dy0.dataSync(), dy0.shape);
  res[b] = (tf.engine().runKernel('Conv3DBackpropFilterV2', {x, dy} as any, {strides:[1,2,2], pad:'valid', filterShape:[1,3,3,3,4]} as any) as tf.Tensor).dataSync();
}
const md = (a: any, b: any) => a.reduce((m: number, v: number, i: number) => Math.max(m, Math.abs(v - b[i])), 0);
console.log(md(res.wasm, res.cpu), res.wasm.slice(0,5), res.cpu.slice(0,5));
