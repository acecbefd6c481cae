import { initBackend, tf } from '../ml/backend/index.js';
console.log(await initBackend('wasm'));
const cases: any[] = [[1,1,'same'],[3,2,'valid'],[3,1,[[0,0],[1,1],[1,1],[0,0]]],[7,2,[[0,0],[3,3],[3,3],[0,0]]],[3,2,1]];
for (const [k,s,p] of cases) {
  const x = tf.randomNormal([2,9,9,3], 0, 1, 'float32', 1); const f = tf.randomNormal([k,k,3,4],0,1,'float32',2);
  const res: any = {};
  for (const b of ['wasm','cpu']) { await tf.setBackend(b);
    const xx = tf.tensor(x.dataSync(), x.shape); const ff = tf.tensor(f.dataSync(), f.shape);
    const [gx, gf] = tf.grads((a: any, w: any) => tf.sum(tf.square(tf.conv2d(a, w, s, p))))([xx, ff]);
    res[b] = [gx.dataSync(), gf.dataSync()];
  }
  const md = (a: any, b: any) => a.reduce((m: number, v: number, i: number) => Math.max(m, Math.abs(v - b[i])), 0);
  console.log(k, s, JSON.stringify(p), md(res.wasm[0], res.cpu[0]), md(res.wasm[1], res.cpu[1]));
  await tf.setBackend('wasm');
}
