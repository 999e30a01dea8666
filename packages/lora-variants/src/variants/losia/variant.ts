// LoSiA (Low-Resources Subnet Integration Adaptation): localize a sub-network of each weight — a set of
// output rows R and input columns C — and train W[R, C] as one dense core, a high-rank update at the cost
// of |R| · |C| scalars; re-localize during training. Our reading of "subnet localization by gradient
// sparsity analysis": rows are ranked by their summed score, then columns by their summed score within
// the chosen rows, where the score is |W| (data-free default), random, or any [out, in] matrix given to
// `initWithScores` (e.g. accumulated |W ⊙ G| or |G|). `losiaRelocalize` merges the trained core into the
// base and localizes a new subnet from new scores, leaving the adapted function unchanged.
import { magnitudeScores, randomScores } from '@sparse/masks';
import { ArgumentError, type Float32Tensor, type Random, tensor, type Tensor } from '@sparse/tensor';
import type { MergeOptions } from '../types.js';
import { makeSparseVariant, matmulT, topIndices, zerosMatrix, type IndexedAdapterState } from '../helpers/sparse.js';
import { losiaConfigSchema, type LoSiAConfig } from './config.js';

const sizeOf = (n: number, f: number) => Math.max(1, Math.round(f * n));

/** Rows by summed score, then columns by summed score within those rows. */
export function losiaLocalize(scores: Float32Tensor, c: LoSiAConfig): { rows: Int32Array; cols: Int32Array } {
  const [out, inp] = scores.shape as [number, number];
  const rowSum = new Float64Array(out);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) rowSum[i]! += scores.data[i * inp + j]!;
  const rows = topIndices(rowSum, sizeOf(out, c.rows));
  const colSum = new Float64Array(inp);
  for (const i of rows) for (let j = 0; j < inp; j++) colSum[j]! += scores.data[i * inp + j]!;
  return { rows, cols: topIndices(colSum, sizeOf(inp, c.cols)) };
}

export const losiaVariant = makeSparseVariant<LoSiAConfig>({
  name: 'losia',
  // gradient-based sensitivity |W ⊙ G| for subnet localization
  supportScores: {
    criteria: ['sensitivity', 'gradient', 'fisher', 'magnitude'],
    needsData: (config: unknown) =>
      (config as Partial<LoSiAConfig> | undefined)?.every !== undefined ? 're-localization needs data scores: sensitivity, gradient or fisher' : undefined,
  },
  describe: 'LoSiA: train a localized subnet W[R, C] (selected rows × columns) as one dense core; re-localize as training goes',
  paper: 'Wang et al. 2025, LoSiA: Efficient High-Rank Fine-Tuning via Subnet Localization and Optimization',
  differs: [
    'the localization is this library\'s reading of the paper\'s gradient sparsity analysis: rows by summed score, then columns by summed score within them; the data-free default score is |W|',
  ],
  schema: losiaConfigSchema,
  create(base, c, rng, scores) {
    const { rows, cols } = losiaLocalize(scores ?? (c.score === 'magnitude' ? magnitudeScores(base) : randomScores(base.shape, rng)), c);
    return { params: { losia_core: tensor(new Float32Array(rows.length * cols.length), [rows.length, cols.length]) }, indices: { rows, cols } };
  },
  delta(state) {
    const [out, inp] = state.shape;
    const d = zerosMatrix(out, inp);
    const { rows, cols } = state.indices;
    const core = state.params.losia_core!.data;
    rows!.forEach((i, p) => cols!.forEach((j, q) => (d.data[i * inp + j] = core[p * cols!.length + q]!)));
    return d;
  },
  addForward(x, state, y) {
    // y[:, R] += x[:, C] · coreᵀ: the subnet's rows read only the subnet's columns.
    const { rows, cols } = state.indices;
    const n = x.shape[0]!;
    const [out, inp] = state.shape;
    const kc = cols!.length;
    const xs: Float32Tensor = tensor(Float32Array.from({ length: n * kc }, (_, q) => x.data[Math.floor(q / kc) * inp + cols![q % kc]!]!), [n, kc]);
    const part = matmulT(xs, state.params.losia_core!);
    const kr = rows!.length;
    for (let a = 0; a < n; a++) rows!.forEach((i, p) => (y.data[a * out + i] = y.data[a * out + i]! + part.data[a * kr + p]!));
  },
  count: ([out, inp], c) => sizeOf(out, c.rows) * sizeOf(inp, c.cols),
});

/**
 * Re-localization: merges the trained core into `base` (through its mask unless `densify`) and starts a
 * new zero core on the subnet the new `scores` pick. The adapted layer computes the same function before
 * and after; training continues on the new subnet.
 */
export function losiaRelocalize(
  base: Tensor,
  state: IndexedAdapterState<LoSiAConfig>,
  scores: Tensor,
  rng: Random,
  opts?: MergeOptions,
): { base: Float32Tensor; state: IndexedAdapterState<LoSiAConfig> } {
  if (state?.variant !== 'losia') throw new ArgumentError(`losiaRelocalize: adapter state is for '${String(state?.variant)}', not 'losia'`);
  const merged = losiaVariant.merge(base, state, opts);
  return { base: merged, state: losiaVariant.initWithScores(merged, state.config, rng, scores) };
}
