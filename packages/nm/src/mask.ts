// N:M masks: in every group of M consecutive entries (along rows or columns) keep the N best-scored.
import { isKept, maskFromTensor, validateMask, type Mask } from '@sparse/masks';
import { ArgumentError, asTensor, selectNM, ShapeError, type Tensor } from '@sparse/tensor';
import { checkDivisible, checkNM, type NMAxis, type NMParams } from './internal.js';

export type { NMAxis, NMParams } from './internal.js';

export interface NMMaskOptions extends NMParams {
  /** 'magnitude' (default) ranks by |score| (pass the weight itself); 'value' ranks by the score as given. */
  rank?: 'magnitude' | 'value';
}

/** Start offsets (flat row-major) and stride of group g's entries for a [rows, cols] matrix. */
function groupGeometry(rows: number, cols: number, m: number, axis: NMAxis) {
  // 'row': groups tile each row; 'column': groups tile each column.
  const perLine = (axis === 'row' ? cols : rows) / m;
  const lines = axis === 'row' ? rows : cols;
  const step = axis === 'row' ? 1 : cols;
  const start = (g: number) => {
    const line = Math.floor(g / perLine);
    const k = (g % perLine) * m;
    return axis === 'row' ? line * cols + k : k * cols + line;
  };
  return { groups: lines * perLine, step, start };
}

/**
 * The N:M mask of a [rows, cols] score matrix: each group of M consecutive entries along `axis` keeps its N
 * highest scores (|score| by default), by @sparse/tensor's selectNM rule: NaN above every number (+Infinity
 * included), ties to the lower index. For W[out, in], axis 'row' groups along the input dimension, which is
 * what sparse tensor cores accelerate. The scores are read in place (any dtype and strides).
 */
export function nmMask(scores: Tensor, opts: NMMaskOptions): Mask {
  const axis = checkNM('nmMask', opts);
  const t = asTensor(scores);
  if (t.shape.length !== 2) throw new ShapeError(`nmMask: expected a matrix, got shape [${t.shape.join(', ')}]`);
  checkDivisible('nmMask', t.shape[0]!, t.shape[1]!, opts.m, axis);
  const rank = opts.rank ?? 'magnitude';
  if (rank !== 'magnitude' && rank !== 'value') throw new ArgumentError(`nmMask: rank must be 'magnitude' or 'value', got ${JSON.stringify(rank)}`);
  return selectNM(t, opts.n, opts.m, { axis, rank });
}

/** The first group that breaks the pattern: its line (row or column), first index along it, and kept count. */
export interface NMViolation {
  axis: NMAxis;
  /** Row (axis 'row') or column (axis 'column') of the group. */
  line: number;
  /** Index of the group's first entry along that line. */
  start: number;
  /** Non-zeros / kept entries found in the group. */
  count: number;
}

export interface NMCheck {
  valid: boolean;
  /** Present when invalid. */
  violation?: NMViolation;
}

export interface IsNMOptions extends NMParams {
  /** Require exactly N per group (default false: at most N, as a weight with extra zeros is still N:M). */
  exact?: boolean;
}

/** Whether a Mask (kept bits) or a tensor (non-zeros) is N:M along `axis`; reports the first violating group. */
export function isNM(x: Mask | Tensor, opts: IsNMOptions): NMCheck {
  const axis = checkNM('isNM', opts);
  const { n, m } = opts;
  const mask = 'bits' in x ? x : maskFromTensor(x);
  validateMask(mask, 'isNM');
  if (mask.shape.length !== 2) throw new ShapeError(`isNM: expected a matrix, got shape [${mask.shape.join(', ')}]`);
  const [rows, cols] = mask.shape as [number, number];
  checkDivisible('isNM', rows, cols, m, axis);
  const { groups, step, start } = groupGeometry(rows, cols, m, axis);
  const perLine = (axis === 'row' ? cols : rows) / m;
  for (let g = 0; g < groups; g++) {
    const s = start(g);
    let count = 0;
    for (let q = 0; q < m; q++) if (isKept(mask, s + q * step)) count++;
    if (count > n || (opts.exact === true && count !== n)) {
      return { valid: false, violation: { axis, line: Math.floor(g / perLine), start: (g % perLine) * m, count } };
    }
  }
  return { valid: true };
}
