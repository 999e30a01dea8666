import { maskFromTensor, isKept, type Mask } from '@sparse/masks';
import { ArgumentError, assertMatrix, copy, DTypeError, parseConfig, ShapeError, type Float32Tensor, type Tensor } from '@sparse/tensor';
import type { z } from 'zod';
import type { AdapterState, MergeOptions } from '../types.js';

/** A contiguous float32 copy of a matrix (inputs may be any strided float32 view). */
export function floatMatrix(t: Tensor, where: string, name: string): Float32Tensor {
  if (t?.dtype !== 'float32') throw new DTypeError(`${where}: ${name} must be float32, got ${String(t?.dtype)}`);
  assertMatrix(t, `${where}: ${name}`);
  return copy(t as Float32Tensor);
}

/** Parses with a zod schema; the error names the variant and each failing field path. */
export function parseWith<S extends z.ZodType>(schema: S, config: unknown, where: string): z.output<S> {
  return parseConfig(schema, config, where) as z.output<S>;
}

export function checkState(state: AdapterState, variant: string, where: string): void {
  if (state?.variant !== variant) throw new ArgumentError(`${where}: adapter state is for '${String(state?.variant)}', not '${variant}'`);
}

export function checkShape(t: Tensor, state: AdapterState, where: string, name: string): void {
  const [o, i] = assertMatrix(t, `${where}: ${name}`);
  if (o !== state.shape[0] || i !== state.shape[1]) {
    throw new ShapeError(`${where}: ${name} is [${o}, ${i}] but the adapter was made for [${state.shape.join(', ')}]`);
  }
}

/** The mask a merge goes through: given, else the nonzeros of `w` (null when densifying). */
export function mergeMask(w: Tensor, opts: MergeOptions | undefined, where: string): Mask | null {
  if (opts?.densify) return null;
  const m = opts?.mask ?? maskFromTensor(w);
  if (m.shape.length !== 2 || m.shape[0] !== w.shape[0] || m.shape[1] !== w.shape[1]) {
    throw new ShapeError(`${where}: mask shape [${m.shape.join(', ')}] differs from weight [${w.shape.join(', ')}]`);
  }
  return m;
}

/** out = w + sign * delta on kept entries (all entries when mask is null); w and delta contiguous. */
export function addMasked(w: Float32Tensor, delta: Float32Tensor, mask: Mask | null, sign: 1 | -1): Float32Tensor {
  const out = w.data;
  const d = delta.data;
  for (let k = 0; k < out.length; k++) {
    // Pruned entries stay exactly as they are (0 in a pruned base), so the mask survives bit-exactly.
    if (mask === null || isKept(mask, k)) out[k] = out[k]! + sign * d[k]!;
  }
  return w;
}
