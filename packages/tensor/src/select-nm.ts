// N:M selection: in every group of M consecutive scores keep the N highest. The one implementation of
// the rule for the whole project (layouts, masks, pruners and N:M training all call it):
//   - NaN ranks above every number, +Infinity included: a NaN score is never silently pruned (the
//     PyTorch reference implementations agree: torch.topk treats NaN as the largest value);
//   - otherwise the larger score ranks higher ('magnitude': the larger |score|); -0 and +0 are equal;
//   - equal scores (two NaNs included) go to the lower position in the group.

import { decodeValue } from './float16.js';
import { ArgumentError, ShapeError } from './errors.js';
import { asTensor, type Tensor } from './tensor.js';

/** How scores rank: 'value' as given, 'magnitude' by |score|. */
export type NMRank = 'value' | 'magnitude';

/** 'row': groups of M consecutive entries along each row (W[out, in] grouped along in); 'column': along each column. */
export type NMSelectAxis = 'row' | 'column';

/** Whether score a ranks strictly above score b: NaN above everything, then the larger value (ties rank neither way). */
export function nmRanksAbove(a: number, b: number): boolean {
  // a !== a is NaN; a NaN ranks above b unless b is NaN too.
  if (a !== a) return b === b;
  return a > b;
}

export interface SelectNMGroupOptions {
  /** 'value' (default) or 'magnitude'. */
  rank?: NMRank;
  /** Index in `values` of the group's first score (default 0). */
  offset?: number;
  /** Distance in `values` between consecutive scores of the group (default 1). */
  stride?: number;
}

function checkCounts(where: string, n: number, m: number): void {
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(m) || m < 1 || n < 0 || n > m) {
    throw new ArgumentError(`${where}: need integers 0 <= n <= m, m >= 1, got n = ${String(n)}, m = ${String(m)}`);
  }
}

function checkRank(where: string, rank: unknown): boolean {
  if (rank !== 'value' && rank !== 'magnitude') throw new ArgumentError(`${where}: rank must be 'value' or 'magnitude', got ${JSON.stringify(rank)}`);
  return rank === 'magnitude';
}

/** Groups up to this size are selected with a 32-bit "taken" word; larger ones by sorting positions. */
const WORD_GROUP = 32;

/** The unchecked core of selectNMGroup (selectNM validates once for all of its groups). */
function groupTop(values: ArrayLike<number>, n: number, m: number, out: Int32Array, abs: boolean, offset: number, stride: number): void {
  if (m <= WORD_GROUP) {
    // n rounds of "best remaining"; the strict comparison keeps the lower position on ties.
    let taken = 0;
    for (let r = 0; r < n; r++) {
      let best = -1;
      let bv = 0;
      for (let q = 0; q < m; q++) {
        if (taken & (1 << q)) continue;
        const x = values[offset + q * stride]!;
        const v = abs ? Math.abs(x) : x;
        if (best < 0 || nmRanksAbove(v, bv)) {
          best = q;
          bv = v;
        }
      }
      taken |= 1 << best;
      out[r] = best;
    }
    return;
  }
  const key = new Float64Array(m);
  for (let q = 0; q < m; q++) {
    const x = values[offset + q * stride]!;
    key[q] = abs ? Math.abs(x) : x;
  }
  const order = Int32Array.from({ length: m }, (_, q) => q).sort((p, q) => (nmRanksAbove(key[p]!, key[q]!) ? -1 : nmRanksAbove(key[q]!, key[p]!) ? 1 : p - q));
  out.set(order.subarray(0, n));
}

/**
 * The N:M rule on one group: the positions (0..m-1) of the n highest-ranked of the m scores
 * values[offset + q * stride], best first (equal scores: lower position first), written to out[0..n).
 * Reads `values` in place (no copy) and allocates nothing for m <= 32. Returns out.
 */
export function selectNMGroup(values: ArrayLike<number>, n: number, m: number, out: Int32Array, opts: SelectNMGroupOptions = {}): Int32Array {
  const where = 'selectNMGroup';
  checkCounts(where, n, m);
  const abs = checkRank(where, opts.rank ?? 'value');
  const offset = opts.offset ?? 0;
  const stride = opts.stride ?? 1;
  const last = offset + (m - 1) * stride;
  const inside = (i: number) => i >= 0 && i < values.length;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(stride) || !inside(offset) || !inside(last)) {
    throw new ArgumentError(`${where}: the group (offset ${String(offset)}, stride ${String(stride)}, m = ${m}) does not lie inside values of length ${values.length}`);
  }
  if (!(out instanceof Int32Array) || out.length < n) throw new ArgumentError(`${where}: out must be an Int32Array of at least n = ${n} entries`);
  groupTop(values, n, m, out, abs, offset, stride);
  return out;
}

export interface SelectNMOptions {
  /** 'value' (default) or 'magnitude'. */
  rank?: NMRank;
  /** Group direction, 'row' by default. */
  axis?: NMSelectAxis;
}

/** Kept entries of a [rows, cols] matrix, bit-packed row-major (bit i & 31 of bits[i >>> 5]): the layout of @sparse/masks' Mask. */
export interface NMSelection {
  shape: [number, number];
  bits: Uint32Array;
}

/**
 * N:M selection on a [rows, cols] score matrix of any dtype (16-bit floats and bools decoded) and strides: every
 * group of m consecutive entries along `axis` keeps its n highest-ranked scores (the rule of
 * selectNMGroup: NaN highest, then larger; ties to the lower index). The scores are read in place.
 * The result is structurally a Mask of @sparse/masks.
 */
export function selectNM(scores: Tensor, n: number, m: number, opts: SelectNMOptions = {}): NMSelection {
  const where = 'selectNM';
  const t = asTensor(scores);
  if (t.shape.length !== 2) throw new ShapeError(`${where}: expected a matrix, got shape [${t.shape.join(', ')}]`);
  checkCounts(where, n, m);
  const abs = checkRank(where, opts.rank ?? 'value');
  const axis = opts.axis ?? 'row';
  if (axis !== 'row' && axis !== 'column') throw new ArgumentError(`${where}: axis must be 'row' or 'column', got ${JSON.stringify(axis)}`);
  const [rows, cols] = t.shape as [number, number];
  const grouped = axis === 'row' ? cols : rows;
  if (grouped % m !== 0) throw new ShapeError(`${where}: ${axis === 'row' ? 'column' : 'row'} count ${grouped} of shape [${rows}, ${cols}] is not a multiple of m = ${m}`);
  const bits = new Uint32Array(Math.ceil((rows * cols) / 32));
  const [s0, s1] = t.stride as [number, number];
  // Along a row, entries of a group are s1 apart in storage and 1 apart in the row-major output; along a column, s0 and cols.
  const lines = axis === 'row' ? rows : cols;
  const step = axis === 'row' ? s1 : s0;
  const outStep = axis === 'row' ? 1 : cols;
  // Raw storage that is not the value (16-bit float bits; bool bytes other than 0 and 1) is decoded per group.
  const decoded = t.dtype === 'float16' || t.dtype === 'bfloat16' || t.dtype === 'bool' ? new Float64Array(m) : undefined;
  const kept = new Int32Array(n);
  for (let line = 0; line < lines; line++) {
    for (let k = 0; k < grouped; k += m) {
      const [r, c] = axis === 'row' ? [line, k] : [k, line];
      const start = t.offset + r * s0 + c * s1;
      if (decoded) {
        for (let q = 0; q < m; q++) decoded[q] = decodeValue(t.dtype, t.data[start + q * step]!);
        groupTop(decoded, n, m, kept, abs, 0, 1);
      } else {
        groupTop(t.data, n, m, kept, abs, start, step);
      }
      const first = r * cols + c;
      for (let j = 0; j < n; j++) {
        const i = first + kept[j]! * outStep;
        bits[i >>> 5]! |= 1 << (i & 31);
      }
    }
  }
  return { shape: [rows, cols], bits };
}
