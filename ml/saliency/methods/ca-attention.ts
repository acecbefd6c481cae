// CA attention: the l4 block's softmax(dots), averaged over heads (design §3); CA models only.
import { caAttention } from '../ca-attention.js';
import { defineSaliencyMethod } from '../method.js';

export default defineSaliencyMethod(
  {
    name: 'ca-attention',
    title: 'CA attention (l4)',
    needs: 'dots',
    inputs: ['dots', 'heads', 'h', 'w'],
    resolution: 'feature',
    classSpecific: false,
    caOnly: true,
    seeded: false,
  },
  (i) => caAttention(i.dots, i.heads, i.h, i.w),
);
