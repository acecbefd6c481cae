// The image preprocessing conventions. `torchvision` gives the pixels torchvision computes on PIL
// images (what published ImageNet numbers and pretrained weights assume); `fast` is libvips'
// decode and resize (colour-managed, shrink-on-load, about 1/255 off on most photos and far more
// on CMYK, Adobe RGB and large images), the behaviour of ca-pipe before the conventions existed.
export const PREPROCESSING_CONVENTIONS = ['torchvision', 'fast'] as const;
export type Preprocessing = (typeof PREPROCESSING_CONVENTIONS)[number];

/** What an unset convention means for a stage at this input size: torchvision at ImageNet's 224. */
export function defaultPreprocessing(inputSize: number): Preprocessing {
  return inputSize === 224 ? 'torchvision' : 'fast';
}

/**
 * The convention of a stage: its own param, else the dataset's (index param), else the input
 * size's default.
 */
export function resolvePreprocessing(param: Preprocessing | undefined, dataset: Preprocessing | undefined, inputSize: number): Preprocessing {
  return param ?? dataset ?? defaultPreprocessing(inputSize);
}

/** A model card written before conventions were recorded was trained on `fast` pixels. */
export function modelPreprocessing(card: { preprocessing?: unknown }): Preprocessing {
  return card.preprocessing === 'torchvision' ? 'torchvision' : 'fast';
}

/** The warning for a stage reading a model trained under another convention, or null. */
export function conventionMismatch(stage: string, used: Preprocessing, trained: Preprocessing): string | null {
  if (used === trained) return null;
  return `${stage}: images are preprocessed with the '${used}' convention but the model was trained with '${trained}'; ` +
    `its inputs differ from what it saw in training (set preprocessing: ${trained} to match)`;
}
