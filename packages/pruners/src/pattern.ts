// Sparsity patterns shared by every pruner's config: `{ sparsity }` (unstructured) or `{ n, m }` (N:M along
// the input dimension: in every output row, each group of M consecutive input columns keeps exactly N).

import { maskBySparsity, type Granularity, type Mask } from '@sparse/masks';
import { ArgumentError, selectNM, ShapeError, tensor } from '@sparse/tensor';
import { z } from 'zod';
import { where } from './internal.js';

export type Pattern = { kind: 'unstructured'; sparsity: number } | { kind: 'nm'; n: number; m: number };

/** The sparsity used when a config names no pattern. */
export const DEFAULT_SPARSITY = 0.5;

/** The pattern fields every method config has (spread into a z.strictObject). */
export const patternFields = {
  /** Fraction of weights pruned, in [0, 1). Default 0.5 when neither sparsity nor n/m is given. */
  sparsity: z.number().min(0, 'sparsity must be in [0, 1)').lt(1, 'sparsity must be in [0, 1) (1 would prune everything)').optional(),
  /** N:M: weights kept in each group of M consecutive input columns. */
  n: z.int('n must be an integer').min(1, 'n must be at least 1').optional(),
  /** N:M: group size along the input dimension. */
  m: z.int('m must be an integer').min(2, 'm must be at least 2').optional(),
};

export interface PatternConfig {
  sparsity?: number | undefined;
  n?: number | undefined;
  m?: number | undefined;
}

/** zod refinement: n and m come together, N < M, and not together with sparsity. */
export function checkPattern(v: PatternConfig, ctx: z.RefinementCtx): void {
  const hasN = v.n !== undefined;
  const hasM = v.m !== undefined;
  if (hasN !== hasM) {
    ctx.addIssue({ code: 'custom', path: [hasN ? 'm' : 'n'], message: 'an N:M pattern needs both n and m' });
    return;
  }
  if (hasN && v.n! >= v.m!) {
    ctx.addIssue({ code: 'custom', path: ['n'], message: `N:M needs N < M (N kept in every group of M), got ${v.n}:${v.m}` });
  }
  if (hasN && v.sparsity !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['sparsity'], message: 'give either sparsity or n and m, not both' });
  }
}

/** Fills in the default sparsity when no pattern is named (zod transform). */
export function withDefaultSparsity<T extends PatternConfig>(v: T): T {
  return v.n === undefined && v.sparsity === undefined ? { ...v, sparsity: DEFAULT_SPARSITY } : v;
}

/** The pattern of a parsed config. */
export function patternOf(v: PatternConfig): Pattern {
  if (v.n !== undefined && v.m !== undefined) return { kind: 'nm', n: v.n, m: v.m };
  return { kind: 'unstructured', sparsity: v.sparsity ?? DEFAULT_SPARSITY };
}

export function describePattern(p: Pattern): string {
  return p.kind === 'nm' ? `${p.n}:${p.m}` : `${p.sparsity} unstructured`;
}

/** Throws a ShapeError naming the layer unless the input dimension splits into groups of M. */
export function checkNMShape(method: string, layer: string, cols: number, m: number): void {
  if (cols % m !== 0) {
    throw new ShapeError(`${where(method, layer)}: an N:M pattern needs the input dimension (${cols}) to be a multiple of M = ${m}`);
  }
}

/**
 * Keeps the highest scores of a [rows, cols] score matrix under a pattern: unstructured keeps
 * keepCount(size, s) per tensor ('tensor') or keepCount(cols, s) per row ('row'), NaN scores rejected
 * (@sparse/masks); N:M keeps the N highest of every group of M consecutive columns by selectNM of
 * @sparse/tensor (NaN above every number). Ties go to the lower index.
 */
export function selectByPattern(
  method: string,
  layer: string,
  scores: Float32Array | Float64Array,
  rows: number,
  cols: number,
  pattern: Pattern,
  granularity: Granularity = 'tensor',
): Mask {
  if (pattern.kind === 'unstructured') return maskBySparsity(tensor(scores, [rows, cols]), pattern.sparsity, granularity);
  checkNMShape(method, layer, cols, pattern.m);
  if (granularity === 'column') throw new ArgumentError(`${where(method, layer)}: N:M groups run along the input dimension; granularity 'column' does not apply`);
  return selectNM(tensor(scores, [rows, cols]), pattern.n, pattern.m);
}
