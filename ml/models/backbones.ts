// The backbone registry: a family module plus one line here is all a new backbone needs.
import { ARCHS, type ResNetArch } from './arch.js';
import type { Backbone } from './backbone.js';
import { backboneNames } from './backbone-names.js';
import { ResNetBackbone } from './resnet-backbone.js';
import { CONVNEXT_ARCHS, ConvNeXtBackbone } from './convnext.js';
import { EFFICIENTNET_ARCHS, EfficientNetBackbone } from './efficientnet.js';

interface Family {
  create(name: string): Backbone | undefined;
}

const FAMILIES: Family[] = [
  { create: (n) => (ARCHS[n] ? new ResNetBackbone(ARCHS[n]) : undefined) },
  { create: (n) => (CONVNEXT_ARCHS[n] ? new ConvNeXtBackbone(CONVNEXT_ARCHS[n]) : undefined) },
  { create: (n) => (EFFICIENTNET_ARCHS[n] ? new EfficientNetBackbone(EFFICIENTNET_ARCHS[n]) : undefined) },
];

const cache = new Map<string, Backbone>();

export { backboneNames };

function isBackbone(a: unknown): a is Backbone {
  return typeof a === 'object' && a !== null && typeof (a as Backbone).emitOnnx === 'function';
}

/** The backbone for an architecture name (or a ResNet description, or a Backbone itself). */
export function getBackbone(arch: string | ResNetArch | Backbone): Backbone {
  if (isBackbone(arch)) return arch;
  if (typeof arch !== 'string') return new ResNetBackbone(arch);
  const hit = cache.get(arch);
  if (hit) return hit;
  for (const f of FAMILIES) {
    const b = f.create(arch);
    if (b) {
      cache.set(arch, b);
      return b;
    }
  }
  throw new Error(`unknown architecture "${arch}" (known: ${backboneNames().join(', ')})`);
}
