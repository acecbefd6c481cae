// A weight tensor holding NaN or ±Inf loads without complaint and turns every logit into NaN, which
// then looks like a perfect score downstream; loaders call this to refuse such tensors by key.

/** Undefined when every value is finite, else a short account ("2 of 9 values are not finite (first: NaN at index 4)"). */
export function describeNonFinite(data: ArrayLike<number>): string | undefined {
  let count = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count === 0) return undefined;
  return `${count} of ${data.length} values are not finite (first: ${data[first]} at index ${first})`;
}
