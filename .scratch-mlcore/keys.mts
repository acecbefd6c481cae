import { readSafetensors } from '../ml/io/safetensors.js';
for (const f of ['weights','expected']) {
  const t = await readSafetensors(`/work/shared/fixtures/resnet-basic-1111.${f}.safetensors`);
  console.log(f, JSON.stringify(t.metadata));
  for (const [k, v] of t.tensors) console.log(k, v.dtype, JSON.stringify(v.shape));
}
