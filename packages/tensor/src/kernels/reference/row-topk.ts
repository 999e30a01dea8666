// Reference rowTopKScaledAbs: in every row, keep the k largest |w_ij| * scale_j (float64 scores; ties to the
// lower column), found by a three-way quickselect on a copy of the row's scores.
import { selectRank } from '../../select-rank.js';
import { validateRowTopKScaledAbsArgs } from '../validate.js';
import type { RowTopKScaledAbsArgs } from '../types.js';

export function rowTopKScaledAbsReference(args: RowTopKScaledAbsArgs): number {
  const { outOffset, ldo } = validateRowTopKScaledAbsArgs(args);
  const { rows, cols, w, wOffset, ldw, scale, k, mask, out } = args;
  for (let i = 0; i < rows; i++) {
    const r = wOffset + i * ldw;
    for (let j = 0; j < cols; j++) if (!Number.isFinite(w[r + j]!)) return i * cols + j;
  }
  const words = Math.ceil((rows * cols) / 32);
  mask.fill(0, 0, words);
  const scores = new Float64Array(cols);
  const work = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const r = wOffset + i * ldw;
    // + 0 turns a -0 scale's -0 score into +0 (they are equal; only their bits differ)
    for (let j = 0; j < cols; j++) scores[j] = Math.abs(w[r + j]!) * scale[j]! + 0;
    // Scores above the k-th largest are kept; of those equal to it, the first (k - above) in column order.
    let threshold = Infinity;
    let ties = 0;
    if (k > 0 && k < cols) {
      work.set(scores);
      threshold = selectRank(work, cols - k);
      let above = 0;
      for (let j = 0; j < cols; j++) if (scores[j]! > threshold) above++;
      ties = k - above;
    }
    const base = i * cols;
    for (let j = 0; j < cols; j++) {
      const s = scores[j]!;
      const kept = k === cols || (k > 0 && (s > threshold || (s === threshold && ties-- > 0)));
      if (kept) mask[Math.floor((base + j) / 32)]! |= 1 << ((base + j) & 31);
      if (out !== undefined) out[outOffset + i * ldo + j] = kept ? w[r + j]! : 0;
    }
  }
  return -1;
}
