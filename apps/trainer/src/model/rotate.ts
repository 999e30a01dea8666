// Norm rotations (WINA's tensor transform, Chen et al. 2025): each block's norm output h is read by linear
// layers W (q, k, v or the fused c_attn after the first norm; the MLP's up / gate projections, and a
// mixture's router and experts, after the second). For an orthogonal R, h W^T = (h R)(W R)^T, so storing
// W R and multiplying the norm's output by R changes nothing in the function. With R the right singular
// vectors of the stacked weights those layers read with (W = U S V^T, R = V), W R = U S has orthogonal
// columns: the condition under which WINA's per-channel score |x_j| ||W_{:,j}|| picks, per token, the
// channels whose removal changes the output least.
//
// Departs from WINA's code in where the rotation sits: WINA rotates the residual stream itself (after
// folding the norms' gains into the next weights) and adds a [d, d] product on each shortcut; here the
// product sits after each norm instead. Both cost one [d, d] product per sublayer. The gains differ in
// place: here the sparsifiers see the norm's whole output (gain and bias) in the basis of W; there, the
// normalized vector in the basis of W diag(gain), the gain folded into the weights.
// The basis is the eigenbasis of the [d, d] Gram matrix of the stacked weights (symmetricEigen of
// @sparse/tensor, about 2 s at d = 1024), the rotated weights one gemm each.

import { ArgumentError, getKernel, symmetricEigen, tensor } from '@sparse/tensor';
import { gptLinears } from './gpt.js';
import { resolveSpec } from './index.js';
import { llamaLinears } from './llama.js';
import type { GPTConfig } from './config.js';
import type { LlamaConfig } from './llama.js';
import type { LinearInfo, ModelSpec } from './types.js';

/** One norm of a block: its rotation parameter and the linear layers reading its output. */
export interface RotatedNorm {
  /** The rotation's parameter name ('h.0.ln_1.rotation'). */
  rotation: string;
  block: number;
  /** Every linear layer reading the norm's output (all are rotated). */
  readers: LinearInfo[];
  /** Those whose stacked weights define the basis (every reader but a mixture's router). */
  basis: LinearInfo[];
}

/**
 * The norms a spec's model rotates, with their readers: per block, the first norm feeds group 0 (the
 * attention's input projections) and the second group 2 (the MLP's input projections, router included).
 */
export function rotatedNorms(spec: ModelSpec): RotatedNorm[] {
  const full = resolveSpec(spec);
  const { architecture, ...rest } = full;
  const gpt = architecture === 'gpt';
  const linears = gpt ? gptLinears(rest as unknown as GPTConfig) : llamaLinears(rest as unknown as LlamaConfig);
  const out: RotatedNorm[] = [];
  for (let b = 0; b < (full.layers as number); b++) {
    for (const [group, norm] of [[0, gpt ? 'ln_1' : 'input_layernorm'], [2, gpt ? 'ln_2' : 'post_attention_layernorm']] as const) {
      const readers = linears.filter((l) => l.block === b && l.group === group);
      const rotation = gpt ? `h.${b}.${norm}.rotation` : `model.layers.${b}.${norm}.rotation`;
      out.push({ rotation, block: b, readers, basis: readers.filter((l) => l.role !== 'moe.router') });
    }
  }
  return out;
}

/** R = the right singular vectors (columns, by non-increasing singular value) of the rows of `weights` stacked, [d, d] row-major float64. */
export function rightSingularBasis(weights: readonly { data: Float32Array; out: number }[], d: number): Float64Array {
  // V of the stack W = U S V^T is V of its Gram matrix W^T W = V S^2 V^T (d x d however many rows), summed
  // over the weights, each W^T W one gemm of the kernel registry (float32 products; native when registered)
  const part = new Float32Array(d * d);
  const g = new Float64Array(d * d);
  const gemm = getKernel('gemm');
  for (const w of weights) {
    if (w.data.length !== w.out * d) throw new ArgumentError(`rightSingularBasis: a weight of ${w.data.length} values is not [${w.out}, ${d}]`);
    if (w.out === 0) continue;
    gemm({ transA: true, transB: false, m: d, n: d, k: w.out, alpha: 1, a: w.data, aOffset: 0, lda: d, b: w.data, bOffset: 0, ldb: d, beta: 0, c: part, cOffset: 0, ldc: d });
    for (let i = 0; i < d * d; i++) g[i]! += part[i]!;
  }
  // exactly symmetric (the two triangles of a float32 product may differ in the last bit)
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) {
      const m = (g[i * d + j]! + g[j * d + i]!) / 2;
      g[i * d + j] = m;
      g[j * d + i] = m;
    }
  }
  // the Gram matrix is symmetric positive semidefinite: its eigenvectors, largest eigenvalue first, are V
  return Float64Array.from(symmetricEigen(tensor(g, [d, d])).vectors.data as Float64Array);
}

/** W [out, d] times R [d, d], through the kernel registry's gemm (native when registered). */
function timesRotation(w: Float32Array, out: number, r: Float32Array, d: number): Float32Array {
  const y = new Float32Array(out * d);
  if (out === 0) return y;
  getKernel('gemm')({ transA: false, transB: false, m: out, n: d, k: d, alpha: 1, a: w, aOffset: 0, lda: d, b: r, bOffset: 0, ldb: d, beta: 0, c: y, cOffset: 0, ldc: d });
  return y;
}

export interface NormRotation {
  /** The spec with `normRotation: true`. */
  spec: ModelSpec;
  /** Every parameter: the readers' weights rotated, each norm's rotation set (the rest shared with the input map). */
  values: Map<string, Float32Array>;
  /** Per norm: its rotation's name and the singular values of its basis stack (non-increasing). */
  norms: { rotation: string; singular: number[] }[];
}

/**
 * Rotates every block norm of a model into the right singular basis of the weights reading it (see the
 * file comment); the model computes the same function (to float32 rounding of the rotated weights). A model
 * that already has rotations is rotated again from its current weights, the new rotation composed onto the
 * old, so the result is the same basis either way.
 */
export function rotateNorms(spec: ModelSpec, values: ReadonlyMap<string, Float32Array>): NormRotation {
  const full = resolveSpec(spec);
  const d = full.d as number;
  const had = (full as { normRotation?: boolean }).normRotation === true;
  const out = new Map(values);
  const norms: NormRotation['norms'] = [];
  const get = (name: string): Float32Array => {
    const v = values.get(name);
    if (v === undefined) throw new ArgumentError(`rotateNorms: no value for parameter ${name}`);
    return v;
  };
  for (const n of rotatedNorms(full)) {
    const basis = n.basis.map((l) => ({ data: get(l.name), out: l.out }));
    const r = Float32Array.from(rightSingularBasis(basis, d));
    for (const l of n.readers) out.set(l.name, timesRotation(get(l.name), l.out, r, d));
    // the composed rotation: the norm's output is already h R0 in a rotated model, so h R0 R
    let rot: Float32Array;
    if (had) rot = timesRotation(get(n.rotation), d, r, d);
    else rot = r;
    out.set(n.rotation, rot);
    // the rotated stack's column norms: its singular values
    const sq = new Float64Array(d);
    for (const l of n.basis) {
      const w = out.get(l.name)!;
      for (let i = 0; i < w.length; i++) sq[i % d]! += w[i]! * w[i]!;
    }
    norms.push({ rotation: n.rotation, singular: Array.from(sq, Math.sqrt) });
  }
  return { spec: { ...full, normRotation: true } as ModelSpec, values: out, norms };
}
