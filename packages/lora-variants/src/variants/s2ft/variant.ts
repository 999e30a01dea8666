// S2FT (Yang et al., "Structured Sparse Fine-Tuning": select sparsely, compute densely). A few whole
// groups of output channels (rows of W [out, in], e.g. attention heads of a q/k/v projection or neurons
// of an up projection) or of input channels (columns, e.g. of an o/down projection) are chosen, and their
// update trains as one dense block: D [k, in] for rows, D [out, k] for columns, k = groups · groupSize.
// Co-permuting the selected channels to the front turns the update into a dense sub-matrix; on the
// core side `s2ftPermutation` gives that order, and the tfjs form scatters D with a gather over the
// permutation. The merge writes the block back into W (through the base mask by default).
// Selection: random groups (the paper's default), or the groups with the largest summed |W| (or summed
// `initWithScores` scores).
import { magnitudeScores } from '@sparse/masks';
import { ArgumentError, ShapeError, tensor, type Float32Tensor, type Random } from '@sparse/tensor';
import type { AdapterState } from '../types.js';
import { makeSparseVariant, matmulT, topIndices, zerosMatrix } from '../helpers/sparse.js';
import { s2ftConfigSchema, type S2FTConfig } from './config.js';

/** The selected groups' channels, sorted (group g covers channels g·groupSize .. (g+1)·groupSize − 1). */
function selectChannels(base: Float32Tensor, c: S2FTConfig, rng: Random, scores: Float32Tensor | undefined): Int32Array {
  const [out, inp] = base.shape as [number, number];
  const len = c.axis === 'row' ? out : inp;
  const channels = c.axis === 'row' ? 'rows' : 'columns';
  if (len % c.groupSize !== 0) throw new ShapeError(`s2ft.init: groupSize ${c.groupSize} does not divide the ${channels} axis (${len})`);
  const nGroups = len / c.groupSize;
  if (c.groups > nGroups) throw new ArgumentError(`s2ft.init: groups ${c.groups} exceeds the ${nGroups} groups of ${c.groupSize} ${channels}`);
  let chosen: number[];
  if (scores === undefined && c.selection === 'random') {
    chosen = rng.shuffle(Array.from({ length: nGroups }, (_, g) => g)).slice(0, c.groups);
  } else {
    const s = scores ?? magnitudeScores(base);
    const sum = new Float64Array(nGroups);
    for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) sum[Math.floor((c.axis === 'row' ? i : j) / c.groupSize)]! += s.data[i * inp + j]!;
    chosen = Array.from(topIndices(sum, c.groups));
  }
  chosen.sort((a, b) => a - b);
  const ch = new Int32Array(c.groups * c.groupSize);
  chosen.forEach((g, t) => {
    for (let q = 0; q < c.groupSize; q++) ch[t * c.groupSize + q] = g * c.groupSize + q;
  });
  return ch;
}

/** The co-permutation: selected channels first (in order), then the rest; perm[newPosition] = channel. */
export function s2ftPermutation(state: AdapterState<S2FTConfig>): Int32Array {
  const ch = (state as AdapterState<S2FTConfig> & { indices: Record<string, Int32Array> }).indices.channels!;
  const len = state.config.axis === 'row' ? state.shape[0] : state.shape[1];
  const selected = new Set(ch);
  const rest = Array.from({ length: len }, (_, q) => q).filter((q) => !selected.has(q));
  return Int32Array.from([...ch, ...rest]);
}

export const s2ftVariant = makeSparseVariant<S2FTConfig>({
  name: 's2ft',
  // data-free in the paper (random groups); data scores may choose the groups instead
  supportScores: { criteria: ['magnitude', 'fisher', 'gradient', 'sensitivity'] },
  describe: 'S2FT: selected row or column groups (heads, channels) train as one dense block D; the merge writes it back',
  schema: s2ftConfigSchema,
  create(base, c, rng, scores) {
    const [out, inp] = base.shape as [number, number];
    const channels = selectChannels(base, c, rng, scores);
    const k = channels.length;
    const block: Float32Tensor = c.axis === 'row' ? tensor(new Float32Array(k * inp), [k, inp]) : tensor(new Float32Array(out * k), [out, k]);
    return { params: { s2ft_block: block }, indices: { channels } };
  },
  delta(state) {
    const [out, inp] = state.shape;
    const d = zerosMatrix(out, inp);
    const ch = state.indices.channels!;
    const blk = state.params.s2ft_block!.data;
    const k = ch.length;
    if (state.config.axis === 'row') ch.forEach((i, t) => d.data.set(blk.subarray(t * inp, (t + 1) * inp), i * inp));
    else for (let i = 0; i < out; i++) ch.forEach((j, t) => (d.data[i * inp + j] = blk[i * k + t]!));
    return d;
  },
  addForward(x, state, y) {
    const [out, inp] = state.shape;
    const n = x.shape[0]!;
    const ch = state.indices.channels!;
    const k = ch.length;
    const blk = state.params.s2ft_block!;
    if (state.config.axis === 'row') {
      // Only the selected outputs change: y[:, ch] += x Dᵀ.
      const part = matmulT(x, blk);
      for (let a = 0; a < n; a++) ch.forEach((i, t) => (y.data[a * out + i] = y.data[a * out + i]! + part.data[a * k + t]!));
    } else {
      // Only the selected inputs are read: y += x[:, ch] Dᵀ.
      const xs: Float32Tensor = tensor(Float32Array.from({ length: n * k }, (_, q) => x.data[Math.floor(q / k) * inp + ch[q % k]!]!), [n, k]);
      const part = matmulT(xs, blk);
      for (let q = 0; q < y.data.length; q++) y.data[q] = y.data[q]! + part.data[q]!;
    }
  },
  count: ([out, inp], c) => c.groups * c.groupSize * (c.axis === 'row' ? inp : out),
});
