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

/**
 * The convention of a stage reading a trained model (saliency, evaluation): its own param, else
 * the one the model card records, else as resolvePreprocessing at the card's input size (cards
 * written before conventions existed, and cards made outside ca-pipe, record none).
 */
export function preprocessingForModel(param: Preprocessing | undefined, card: { preprocessing?: Preprocessing; input_size: number }, dataset: Preprocessing | undefined): Preprocessing {
  return param ?? card.preprocessing ?? resolvePreprocessing(undefined, dataset, card.input_size);
}

/** The warning for a stage reading a model trained under another convention, or null. */
export function conventionMismatch(stage: string, used: Preprocessing, card: { preprocessing?: Preprocessing }, model = 'the model'): string | null {
  if (card.preprocessing === undefined || card.preprocessing === used) return null;
  return `${stage}: images are preprocessed with the '${used}' convention but ${model} was trained with '${card.preprocessing}'; ` +
    `its inputs differ from what it saw in training (set preprocessing: ${card.preprocessing} to match)`;
}
