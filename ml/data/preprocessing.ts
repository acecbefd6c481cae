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
export function resolvePreprocessing(
  param: Preprocessing | undefined,
  dataset: Preprocessing | undefined,
  inputSize: number,
): Preprocessing {
  return param ?? dataset ?? defaultPreprocessing(inputSize);
}

/**
 * The convention of a stage reading a trained model (saliency, evaluation): its own param, else
 * the one the model card records, else the index's, else fast. Every card ca-pipe writes records
 * its convention; one that records none was written before conventions existed, from `fast`
 * pixels, so fast keeps such a model's inputs (and the cached results computed from them) as
 * they were; at 224 px unrecordedNote() warns.
 */
export function preprocessingForModel(
  param: Preprocessing | undefined,
  card: { preprocessing?: Preprocessing },
  dataset: Preprocessing | undefined,
): Preprocessing {
  return param ?? card.preprocessing ?? dataset ?? 'fast';
}

/**
 * The warning for a 224-px model card without a convention when nothing else chose one (where
 * torchvision-trained weights are likely), or null.
 */
export function unrecordedNote(
  stage: string,
  param: Preprocessing | undefined,
  card: { preprocessing?: Preprocessing; input_size: number },
  dataset: Preprocessing | undefined,
): string | null {
  if (param !== undefined || card.preprocessing !== undefined || dataset !== undefined || card.input_size !== 224) return null;
  return (
    `${stage}: the model card records no preprocessing convention (written before conventions existed); using 'fast', ` +
    `the pixels ca-pipe trained on then; for weights trained with torchvision (e.g. ImageNet-pretrained) set preprocessing: torchvision`
  );
}

/** The warning for a stage reading a model trained under another convention, or null. */
export function conventionMismatch(
  stage: string,
  used: Preprocessing,
  card: { preprocessing?: Preprocessing },
  model = 'the model',
): string | null {
  if (card.preprocessing === undefined || card.preprocessing === used) return null;
  return (
    `${stage}: images are preprocessed with the '${used}' convention but ${model} was trained with '${card.preprocessing}'; ` +
    `its inputs differ from what it saw in training (set preprocessing: ${card.preprocessing} to match)`
  );
}
