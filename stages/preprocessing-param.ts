// The `preprocessing` param shared by the stage kinds that turn image files into pixels. It has
// no schema default on purpose: unset, a stage resolves it from its inputs (see each description),
// and keys of stages written before the param existed stay the same.
const CONVENTIONS =
  'torchvision: the pixels torchvision computes on PIL images (PIL decode without colour management or EXIF rotation, ' +
  "Pillow's antialiased bilinear resize, torchvision's crop rounding, ToTensor + Normalize), what ImageNet-pretrained weights and " +
  'published numbers assume; fast: libvips decode and resize (colour-managed, shrink-on-load; about 1/255 off on most photos, ' +
  'far more on CMYK, Adobe RGB or large images, and faster).';

export function preprocessingParam(unset: string): { description: string; enum: ['torchvision', 'fast'] } {
  return { description: `Image preprocessing convention. ${CONVENTIONS} Unset: ${unset}`, enum: ['torchvision', 'fast'] };
}

export const UNSET_FROM_INDEX = "the index's preprocessing, else torchvision at input_size 224 and fast otherwise.";
export const UNSET_FROM_MODEL =
  "the convention the model card records (every train stage records its own: torchvision at input_size 224 unless set), else the index's, else fast (a card without one predates the conventions and was trained on fast pixels). A stage whose convention differs from the model card's warns.";

/**
 * Key material of a train or features stage whose `preprocessing` is unset: at input size 224
 * that now means torchvision pixels (it meant fast before the param existed), so the resolved
 * default enters the key and an entry computed before is not reused for it. At other sizes
 * nothing is added and keys stay as they were (the quickstart's, for one).
 */
export async function unsetPreprocessingDigest(params: { preprocessing?: string; input_size?: number }): Promise<Record<string, string>> {
  return params.preprocessing === undefined && (params.input_size ?? 224) === 224 ? { preprocessing_default: 'torchvision' } : {};
}
