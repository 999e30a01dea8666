// S2FT (Yang et al., "S2FT: Efficient, Scalable and Generalizable LLM Fine-tuning by Structured
// Sparsity": select sparsely, compute densely). Whole attention heads and whole MLP channels are chosen,
// and the rows/columns they own in the coupled matrices train as dense blocks: a head's rows of Q, K and V
// (outputs) and its columns of O (inputs); a channel's rows of up and gate and its column of down. The
// selection is made once per coupled group (`coupled`, from the model's groups given to attachAdapters),
// so every member trains the same heads/channels. Each member's update is one dense block: D [k, in] for
// rows, D [out, k] for columns, k its selected channels. Co-permuting the selected channels to the front
// turns it into a dense sub-matrix; `s2ftPermutation` gives that order, the tfjs form scatters D with a
// gather over the permutation. The merge writes each block back into W (through the base mask by default).
// A weight in no group (or any weight when no groups are given) selects `groups` groups of `groupSize`
// rows or columns of its own (`axis`).
// Selection: random units (the paper's default), or the units with the largest summed |W| (or summed
// `initWithScores` scores) over all the group's members.
// Partial backpropagation (`partialBackprop`, the tfjs form): on a dense base W stays the layer's weight
// and the block trains as the layer's output term, so only the selected channels' gradient is formed.
// differs: the paper permutes the weights in place and updates the sub-matrix inside W; here D is a
// separate tensor (merged at the end). Without `partialBackprop`, and always on a pruned base (whose
// update must go through the mask), D is scattered into the weight and autodiff forms the layer's full
// weight gradient before gathering D's part. K/V heads shared under grouped-query attention train
// whenever one of their query heads is selected.
import { magnitudeScores } from '@sparse/masks';
import { ArgumentError, ShapeError, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import type { AdapterState, CoupledGroup } from '../types.js';
import { floatMatrix, parseWith } from '../helpers/common.js';
import { checkGroup, unitChannels } from '../helpers/coupled.js';
import { makeSparseVariant, matmulT, topIndices, zerosMatrix, type IndexedAdapterState, type ScoredAdapterVariant } from '../helpers/sparse.js';
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

/**
 * The axis a state's block lies on: its `indices.axis` ([0] rows, [1] columns; a coupled member's own
 * axis), else the config's (states saved before the index existed).
 */
export function s2ftAxis(state: AdapterState<S2FTConfig>): 'row' | 'column' {
  const a = (state as Partial<IndexedAdapterState<S2FTConfig>>).indices?.axis;
  if (a === undefined) return state.config.axis;
  if (a.length !== 1 || (a[0] !== 0 && a[0] !== 1)) throw new ShapeError(`s2ft: indices.axis must be [0] (rows) or [1] (columns), got [${Array.from(a).join(', ')}]`);
  return a[0] === 0 ? 'row' : 'column';
}

const axisIndex = (axis: 'row' | 'column') => Int32Array.of(axis === 'row' ? 0 : 1);

function zeroBlock(axis: 'row' | 'column', out: number, inp: number, k: number): Float32Tensor {
  return axis === 'row' ? tensor(new Float32Array(k * inp), [k, inp]) : tensor(new Float32Array(out * k), [out, k]);
}

/** The co-permutation: selected channels first (in order), then the rest; perm[newPosition] = channel. */
export function s2ftPermutation(state: AdapterState<S2FTConfig>): Int32Array {
  const ch = (state as AdapterState<S2FTConfig> & { indices: Record<string, Int32Array> }).indices.channels!;
  const len = s2ftAxis(state) === 'row' ? state.shape[0] : state.shape[1];
  const selected = new Set(ch);
  const rest = Array.from({ length: len }, (_, q) => q).filter((q) => !selected.has(q));
  return Int32Array.from([...ch, ...rest]);
}

/**
 * The units (heads or channels) S2FT trains in a coupled group: `heads` (attention) or `channels` (MLP)
 * of them, at random, or those with the largest score summed over every channel they own in every
 * targeted member (|W| without scores; a member the caller has no scores for counts its |W|). Sorted.
 */
export function s2ftUnits(group: CoupledGroup, bases: Readonly<Record<string, Tensor>>, config: unknown, rng: Random, scores?: (name: string) => Tensor | undefined): number[] {
  const c = parseWith(s2ftConfigSchema, config, 's2ft') as S2FTConfig;
  checkGroup(group, 's2ft.init');
  const field = group.kind === 'attention' ? 'heads' : 'channels';
  const k = c[field];
  if (k > group.units) throw new ArgumentError(`s2ft.init: ${field} ${k} exceeds the ${group.units} ${field} of '${group.name}'`);
  const members = group.members.filter((m) => bases[m.name] !== undefined);
  if (members.length === 0) throw new ArgumentError(`s2ft.init: group '${group.name}': none of its members has a base weight`);
  const given = members.map((m) => scores?.(m.name));
  let chosen: number[];
  if (c.selection === 'random' && given.every((s) => s === undefined)) {
    chosen = rng.shuffle(Array.from({ length: group.units }, (_, u) => u)).slice(0, k);
  } else {
    const sum = new Float64Array(group.units);
    members.forEach((m, t) => {
      const w = floatMatrix(bases[m.name]!, 's2ft.init', `base '${m.name}'`);
      const [out, inp] = w.shape as [number, number];
      const s = given[t] === undefined ? magnitudeScores(w) : floatMatrix(given[t]!, 's2ft.init', `scores of '${m.name}'`);
      if (s.shape[0] !== out || s.shape[1] !== inp) throw new ShapeError(`s2ft.init: scores of '${m.name}' are [${s.shape.join(', ')}] but the weight is [${out}, ${inp}]`);
      // each channel's score on the member's axis, then each unit's over the channels it owns
      const len = m.axis === 'row' ? out : inp;
      const ch = new Float64Array(len);
      for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) ch[m.axis === 'row' ? i : j]! += s.data[i * inp + j]!;
      for (let u = 0; u < group.units; u++) for (const q of unitChannels(m, [u], len)) sum[u]! += ch[q]!;
    });
    chosen = Array.from(topIndices(sum, k));
  }
  return chosen.sort((a, b) => a - b);
}

const perLayer = makeSparseVariant<S2FTConfig>({
  name: 's2ft',
  // data-free in the paper (random groups); data scores may choose the groups instead
  supportScores: { criteria: ['magnitude', 'fisher', 'gradient', 'sensitivity'] },
  describe:
    'S2FT: whole attention heads (rows of Q/K/V, columns of O) and MLP channels (rows of up/gate, columns of down) selected once per coupled group train as dense blocks (partialBackprop: only their gradient is formed, on dense bases); the merge writes them back. differs: D is a separate tensor, not permuted into W in place',
  paper: 'Yang et al. 2024, S2FT: Efficient, Scalable and Generalizable LLM Fine-tuning by Structured Sparsity',
  differs: [
    'the paper permutes the weights in place and updates the sub-matrix inside W; here D is a separate tensor, merged at the end',
    'without partialBackprop, and always on a pruned base, D is scattered into the weight and autodiff forms the layer\'s full weight gradient before D\'s part is gathered',
    'K/V heads shared under grouped-query attention train whenever one of their query heads is selected',
  ],
  schema: s2ftConfigSchema,
  create(base, c, rng, scores) {
    const [out, inp] = base.shape as [number, number];
    const channels = selectChannels(base, c, rng, scores);
    return { params: { s2ft_block: zeroBlock(c.axis, out, inp, channels.length) }, indices: { channels, axis: axisIndex(c.axis) } };
  },
  delta(state) {
    const [out, inp] = state.shape;
    const d = zerosMatrix(out, inp);
    const ch = state.indices.channels!;
    const blk = state.params.s2ft_block!.data;
    const k = ch.length;
    if (s2ftAxis(state) === 'row') ch.forEach((i, t) => d.data.set(blk.subarray(t * inp, (t + 1) * inp), i * inp));
    else for (let i = 0; i < out; i++) ch.forEach((j, t) => (d.data[i * inp + j] = blk[i * k + t]!));
    return d;
  },
  addForward(x, state, y) {
    const [out, inp] = state.shape;
    const n = x.shape[0]!;
    const ch = state.indices.channels!;
    const k = ch.length;
    const blk = state.params.s2ft_block!;
    if (s2ftAxis(state) === 'row') {
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

export const s2ftVariant: ScoredAdapterVariant<S2FTConfig> = {
  ...perLayer,
  // One selection of units per coupled group; each targeted member trains the rows/columns they own.
  coupled: {
    wants: (config) => (config as S2FTConfig).coupled,
    init(group, bases, config, rng, scores) {
      const c = parseWith(s2ftConfigSchema, config, 's2ft') as S2FTConfig;
      const units = s2ftUnits(group, bases, c, rng, scores);
      const out: Record<string, AdapterState> = {};
      for (const m of group.members) {
        const base = bases[m.name];
        if (base === undefined) continue;
        const w = floatMatrix(base, 's2ft.init', `base '${m.name}'`);
        const [o, i] = w.shape as [number, number];
        const channels = unitChannels(m, units, m.axis === 'row' ? o : i);
        const state: IndexedAdapterState<S2FTConfig> = { variant: 's2ft', shape: [o, i], config: c, params: { s2ft_block: zeroBlock(m.axis, o, i, channels.length) }, indices: { channels, axis: axisIndex(m.axis) } };
        out[m.name] = state;
      }
      return out;
    },
  },
};
