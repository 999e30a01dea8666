// S2FT across coupled groups: the heads chosen for an attention agree across Q, K, V (rows) and O
// (columns), the channels chosen for an MLP across up, gate (rows) and down (columns); the selection
// matches a brute-force ranking; and a model trained through attachAdapters with groups computes, after
// the merge, what it computed in training (on a 2:4 base), having changed only the selected rows/columns.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import type { CoupledGroup } from '../types.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { prune24, randn } from '../helpers/sparse-testing.js';
import { s2ftAxis, s2ftUnits, s2ftVariant } from './variant.js';
import type { S2FTConfig } from './config.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// A block of a grouped-query attention (4 query heads, 2 KV heads, head dim 2, d 8) and a gated MLP (hidden 6).
const D = 8;
const HEADS = 4;
const KV = 2;
const HD = 2;
const HIDDEN = 6;
const SHAPES: Record<string, [number, number]> = { q: [HEADS * HD, D], k: [KV * HD, D], v: [KV * HD, D], o: [D, HEADS * HD], gate: [HIDDEN, D], up: [HIDDEN, D], down: [D, HIDDEN] };
const share = HEADS / KV;
const ATTN: CoupledGroup = {
  name: 'attn',
  kind: 'attention',
  units: HEADS,
  members: [
    { name: 'q', axis: 'row', spans: [{ offset: 0, size: HD, share: 1 }] },
    { name: 'k', axis: 'row', spans: [{ offset: 0, size: HD, share }] },
    { name: 'v', axis: 'row', spans: [{ offset: 0, size: HD, share }] },
    { name: 'o', axis: 'column', spans: [{ offset: 0, size: HD, share: 1 }] },
  ],
};
const MLP: CoupledGroup = {
  name: 'mlp',
  kind: 'mlp',
  units: HIDDEN,
  members: [
    { name: 'gate', axis: 'row', spans: [{ offset: 0, size: 1, share: 1 }] },
    { name: 'up', axis: 'row', spans: [{ offset: 0, size: 1, share: 1 }] },
    { name: 'down', axis: 'column', spans: [{ offset: 0, size: 1, share: 1 }] },
  ],
};

/** The channels head h owns on each attention member, and channel c on each MLP member, written out by hand. */
function ownedBy(member: string, unit: number): number[] {
  if (member === 'q' || member === 'o') return [unit * HD, unit * HD + 1];
  if (member === 'k' || member === 'v') return [Math.floor(unit / share) * HD, Math.floor(unit / share) * HD + 1];
  return [unit];
}

function weights(seed: number): Record<string, Float32Tensor> {
  const rng = new Random(seed);
  return Object.fromEntries(Object.entries(SHAPES).map(([n, s]) => [n, randn(rng, s)]));
}

/** Brute force: the k units with the largest Σ over members of Σ |W| over the rows/columns each owns. */
function bruteUnits(group: CoupledGroup, ws: Record<string, Float32Tensor>, k: number): number[] {
  const score = (u: number) => {
    let s = 0;
    for (const m of group.members) {
      const [out, inp] = SHAPES[m.name]!;
      for (const c of ownedBy(m.name, u)) {
        for (let t = 0; t < (m.axis === 'row' ? inp : out); t++) s += Math.abs(ws[m.name]!.data[m.axis === 'row' ? c * inp + t : t * inp + c]!);
      }
    }
    return s;
  };
  return Array.from({ length: group.units }, (_, u) => [score(u), u] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map((e) => e[1])
    .sort((a, b) => a - b);
}

describe('s2ft coupled groups', () => {
  it('one selection of heads / channels per group: every member trains exactly the rows or columns those units own', () => {
    const ws = weights(1);
    const rng = new Random(5);
    for (const [group, cfg] of [[ATTN, { heads: 2 }], [MLP, { channels: 3 }]] as const) {
      const states = s2ftVariant.coupled!.init(group, ws, cfg, rng.fork(group.name));
      const units = s2ftUnits(group, ws, cfg, rng.fork(group.name));
      expect(units.length).toBe(group.kind === 'attention' ? 2 : 3);
      for (const m of group.members) {
        const s = states[m.name] as IndexedAdapterState<S2FTConfig>;
        const want = [...new Set(units.flatMap((u) => ownedBy(m.name, u)))].sort((a, b) => a - b);
        expect(Array.from(s.indices.channels!), m.name).toEqual(want);
        expect(s2ftAxis(s)).toBe(m.axis);
        const [out, inp] = SHAPES[m.name]!;
        expect(s.params.s2ft_block!.shape).toEqual(m.axis === 'row' ? [want.length, inp] : [out, want.length]);
        expect(s.params.s2ft_block!.data.every((x) => x === 0)).toBe(true);
      }
    }
  });

  it('magnitude selection ranks units by |W| summed over all members (brute force), scores replace |W|', () => {
    for (let seed = 0; seed < 6; seed++) {
      const ws = weights(seed);
      const rng = new Random(seed);
      expect(s2ftUnits(ATTN, ws, { heads: 2, selection: 'magnitude' }, rng)).toEqual(bruteUnits(ATTN, ws, 2));
      expect(s2ftUnits(MLP, ws, { channels: 2, selection: 'magnitude' }, rng)).toEqual(bruteUnits(MLP, ws, 2));
    }
    // a large score on O's column 7 (head 3) alone decides the head, though Q, K, V have no scores to add
    const ws = weights(9);
    const scores = (n: string) => {
      const [out, inp] = SHAPES[n]!;
      const s = new Float32Array(out * inp);
      if (n === 'o') s[0 * inp + 7] = 1e6;
      return tensor(s, [out, inp]);
    };
    expect(s2ftUnits(ATTN, ws, { heads: 1 }, new Random(0), scores)).toEqual([3]);
  });

  it('random selection is reproducible from the stream; errors name heads / channels and the group', () => {
    const ws = weights(2);
    const a = s2ftUnits(ATTN, ws, { heads: 2 }, new Random(11));
    expect(s2ftUnits(ATTN, ws, { heads: 2 }, new Random(11))).toEqual(a);
    const seen = new Set<string>();
    for (let s = 0; s < 20; s++) seen.add(s2ftUnits(ATTN, ws, { heads: 2 }, new Random(s)).join(','));
    expect(seen.size).toBeGreaterThan(1);
    expect(() => s2ftUnits(ATTN, ws, { heads: 5 }, new Random(0))).toThrow(/s2ft.init: heads 5 exceeds the 4 heads of 'attn'/);
    expect(() => s2ftUnits(MLP, ws, { channels: 7 }, new Random(0))).toThrow(/s2ft.init: channels 7 exceeds the 6 channels of 'mlp'/);
    expect(() => s2ftVariant.coupled!.init(ATTN, ws, { heads: 0 }, new Random(0))).toThrow(/heads/);
  });

  it('a fused QKV weight (three spans) gets the same head rows in each of its Q, K and V parts', () => {
    const fused: CoupledGroup = {
      name: 'gpt-attn',
      kind: 'attention',
      units: 4,
      members: [
        { name: 'qkv', axis: 'row', spans: [0, 8, 16].map((offset) => ({ offset, size: 2, share: 1 })) },
        { name: 'proj', axis: 'column', spans: [{ offset: 0, size: 2, share: 1 }] },
      ],
    };
    const rng = new Random(3);
    const ws = { qkv: randn(rng, [24, 8]), proj: randn(rng, [8, 8]) };
    const states = s2ftVariant.coupled!.init(fused, ws, { heads: 1 }, new Random(4));
    const u = s2ftUnits(fused, ws, { heads: 1 }, new Random(4))[0]!;
    expect(Array.from((states.qkv as IndexedAdapterState).indices.channels!)).toEqual([2 * u, 2 * u + 1, 8 + 2 * u, 9 + 2 * u, 16 + 2 * u, 17 + 2 * u]);
    expect(Array.from((states.proj as IndexedAdapterState).indices.channels!)).toEqual([2 * u, 2 * u + 1]);
  });

  it('trained through attachAdapters with groups on a 2:4 base: train == merge (1e-5), and only the selected rows / columns changed', () => {
    const rng = new Random(7);
    const ws = weights(7);
    for (const w of Object.values(ws)) prune24(w);
    const vars = Object.fromEntries(Object.entries(ws).map(([n, w]) => [n, tf.variable(tf.tensor(w.data, w.shape), false)]));
    const model = attachAdapters(vars, { targets: Object.keys(SHAPES), variant: 's2ft', config: { heads: 1, channels: 2 }, seed: 3, groups: [ATTN, MLP] });
    const x = tf.tensor2d(Float32Array.from({ length: 5 * D }, () => rng.normal()), [5, D]);
    const lin = (h: tf.Tensor2D, n: string) => tf.matMul(h, model.effectiveWeight(n), false, true) as tf.Tensor2D;
    // a toy block that reads every weight along its head / channel structure: KV heads repeated to the query heads
    const forward = () =>
      tf.tidy(() => {
        const rep = (t: tf.Tensor2D) => tf.reshape(tf.tile(tf.reshape(t, [5, KV, 1, HD]), [1, 1, share, 1]), [5, HEADS * HD]) as tf.Tensor2D;
        const a = lin(tf.mul(tf.mul(lin(x, 'q'), rep(lin(x, 'k'))), rep(lin(x, 'v'))) as tf.Tensor2D, 'o');
        const h = tf.add(x, a) as tf.Tensor2D;
        return tf.add(h, lin(tf.mul(tf.sigmoid(lin(h, 'gate')), lin(h, 'up')) as tf.Tensor2D, 'down')) as tf.Tensor2D;
      });
    const target = tf.randomNormal([5, D], 0, 1, 'float32', 1);
    const before = forward().dataSync();
    const opt = tf.train.adam(0.05);
    for (let s = 0; s < 5; s++) opt.minimize(() => tf.losses.meanSquaredError(target, forward()) as tf.Scalar, false, model.trainableVariables());
    model.training = false;
    const trained = forward().dataSync();
    expect(Math.max(...trained.map((v, k) => Math.abs(v - before[k]!)))).toBeGreaterThan(1e-3);
    const states = Object.fromEntries(Object.keys(SHAPES).map((n) => [n, model.adapterStates()[n] as IndexedAdapterState]));
    model.mergeAndUnload();
    const merged = forward().dataSync();
    expect(Math.max(...merged.map((v, k) => Math.abs(v - trained[k]!)))).toBeLessThan(1e-5);
    // the changed entries lie on the selected channels only, kept entries of the 2:4 base only, and every member changed
    const headOf = new Map<string, Set<number>>();
    for (const [n, [out, inp]] of Object.entries(SHAPES)) {
      const w = vars[n]!.dataSync();
      const ch = new Set(states[n]!.indices.channels!);
      const axis = ATTN.members.concat(MLP.members).find((m) => m.name === n)!.axis;
      let changed = 0;
      for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
        const q = i * inp + j;
        if (w[q] === ws[n]!.data[q]) continue;
        changed++;
        expect(ch.has(axis === 'row' ? i : j), `${n}[${i}, ${j}]`).toBe(true);
        expect(ws[n]!.data[q], `${n}[${i}, ${j}] was pruned`).not.toBe(0);
      }
      expect(changed, n).toBeGreaterThan(0);
      headOf.set(n, ch);
    }
    // Q's rows and O's columns are the same head; K's and V's rows are its KV head; gate, up and down share channels
    expect([...headOf.get('q')!]).toEqual([...headOf.get('o')!]);
    const h = Math.floor([...headOf.get('q')!][0]! / HD);
    expect([...headOf.get('k')!]).toEqual(ownedBy('k', h));
    expect([...headOf.get('v')!]).toEqual(ownedBy('v', h));
    expect([...headOf.get('gate')!]).toEqual([...headOf.get('down')!]);
    expect([...headOf.get('up')!]).toEqual([...headOf.get('down')!]);
    model.dispose();
    opt.dispose();
  });

  it('partialBackprop on a dense base: W stays the weight, the output term gives x (W + ΔW)ᵀ and the same gradients of D; on a pruned base the weight path', () => {
    const rng = new Random(12);
    const ws = weights(12);
    const xs: Record<number, tf.Tensor2D> = { [D]: tf.tensor2d(Float32Array.from({ length: 5 * D }, () => rng.normal()), [5, D]), [HIDDEN]: tf.tensor2d(Float32Array.from({ length: 5 * HIDDEN }, () => rng.normal()), [5, HIDDEN]) };
    const xOf = (n: string) => xs[SHAPES[n]![1]]!;
    const x = xs[D]!;
    const build = (partialBackprop: boolean, pruned: boolean) => {
      const vars = Object.fromEntries(Object.entries(ws).map(([n, w]) => [n, tf.variable(tf.tensor(pruned ? w.data.map((v, q) => (q % 4 < 2 ? v : 0)) : w.data, w.shape), false)]));
      const model = attachAdapters(vars, { targets: Object.keys(SHAPES), variant: 's2ft', config: { heads: 1, channels: 2, partialBackprop }, seed: 4, groups: [ATTN, MLP] });
      const r2 = new Random(13);
      for (const v of model.trainableVariables()) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => r2.normal(0, 0.5)), v.shape));
      return { model, vars };
    };
    const out = (m: ReturnType<typeof build>['model'], n: string) => {
      const t = m.outputTerm(n, xOf(n));
      const y = tf.matMul(xOf(n), m.effectiveWeight(n), false, true) as tf.Tensor2D;
      return t === null ? y : (tf.add(y, t) as tf.Tensor2D);
    };
    const full = build(false, false);
    const part = build(true, false);
    for (const n of Object.keys(SHAPES)) {
      expect(Array.from(part.model.effectiveWeight(n).dataSync()), n).toEqual(Array.from(ws[n]!.data));
      expect(part.model.outputTerm(n, xOf(n)), n).not.toBeNull();
      expect(full.model.outputTerm(n, xOf(n)), n).toBeNull();
      const a = out(part.model, n).dataSync();
      const b = out(full.model, n).dataSync();
      for (let k = 0; k < a.length; k++) expect(Math.abs(a[k]! - b[k]!), `${n}[${k}]`).toBeLessThan(1e-5);
    }
    // the same loss, the same gradients of every block
    const loss = (m: ReturnType<typeof build>['model']) => () => tf.add(tf.sum(tf.square(out(m, 'q'))), tf.sum(tf.tanh(out(m, 'down')))) as tf.Scalar;
    const ga = tf.variableGrads(loss(part.model), part.model.trainableVariables()).grads;
    const gb = tf.variableGrads(loss(full.model), full.model.trainableVariables()).grads;
    const av = Object.values(ga);
    const bv = Object.values(gb);
    expect(av.length).toBe(bv.length);
    av.forEach((g, i) => g.dataSync().forEach((v, k) => expect(Math.abs(v - bv[i]!.dataSync()[k]!)).toBeLessThan(1e-4)));
    // the merge writes what the output term computed
    const before = out(part.model, 'o').dataSync();
    part.model.mergeAndUnload();
    const merged = tf.matMul(x, part.vars.o!, false, true).dataSync();
    for (let k = 0; k < before.length; k++) expect(Math.abs(merged[k]! - before[k]!)).toBeLessThan(1e-5);
    // a pruned base takes the weight path, through the mask
    const pruned = build(true, true);
    expect(pruned.model.outputTerm('q', x)).toBeNull();
    expect(Array.from(pruned.model.effectiveWeight('q').dataSync())).not.toEqual(Array.from(pruned.vars.q!.dataSync()));
    for (const m of [full.model, pruned.model]) m.dispose();
  });

  it('coupled: false, or no groups, keeps the per-weight selection (axis, groupSize, groups)', () => {
    const ws = weights(8);
    const vars = Object.fromEntries(Object.entries(ws).map(([n, w]) => [n, tf.variable(tf.tensor(w.data, w.shape), false)]));
    const off = attachAdapters(vars, { targets: ['q', 'o'], variant: 's2ft', config: { coupled: false, groupSize: 2, groups: 1 }, seed: 1, groups: [ATTN] });
    for (const n of ['q', 'o']) {
      const s = off.adapterStates()[n] as IndexedAdapterState;
      expect(s2ftAxis(s as IndexedAdapterState<S2FTConfig>)).toBe('row');
      expect(s.indices.channels!.length).toBe(2);
    }
    off.dispose();
  });
});
