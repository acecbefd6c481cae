import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
console.log(Object.keys(wasm));
const ok = await tf.setBackend('wasm');
console.log(ok, tf.getBackend());
const x = tf.randomNormal([1,5,5,2]); const f = tf.randomNormal([3,3,2,4]);
try { const g = tf.grad((ff: any) => tf.sum(tf.conv2d(x as any, ff, 1, "same")))(f); g.print(); } catch (e) { console.log('ERR', (e as Error).message); }
console.log(tf.getKernel('Conv3DBackpropFilterV2','wasm') ? 'has c3bf':'no');
