import { countPerColumn, countPerRow, keepCount } from '@sparse/masks';
import { ArgumentError, Random, ShapeError, tensor } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { columnNormsOf, correlatedInputs, normalMatrix } from '../../__fixtures__/layers.js';
import { cfspBlockDensities, cfspPrune, channelScores, groupScores, structuredPrune } from './structured.js';

/** CFSP's three_w_one_wa written as the reference does: full [out, C] matrices, normalized per column, averaged. */
function cfspReference(down: number[][], ups: number[][][], a: number[], b: number, c: number): number[] {
  const out = down.length;
  const C = a.length;
  const under = down.map((row) => row.map((v, j) => Math.abs(v) * a[j]! ** b));
  const norm = (m: number[][]) => {
    const cs = m[0]!.map((_, j) => m.reduce((s, row) => s + Math.abs(row[j]!), 0));
    return m.map((row) => row.map((v, j) => (cs[j]! > 0 ? Math.abs(v) / cs[j]! : 0)));
  };
  const terms = [norm(under), ...ups.map((u) => norm(u[0]!.map((_, k) => u.map((row) => row[k]!))))]; // producers transposed to [in, C]
  const scores: number[] = [];
  for (let j = 0; j < C; j++) {
    let s = 0;
    for (const t of terms) for (let i = 0; i < t.length; i++) s += t[i]![j]!;
    scores.push((s * a[j]! ** c) / out);
  }
  return scores;
}

const rows = (t: { data: Float32Array; shape: number[] }) => Array.from({ length: t.shape[0]! }, (_, i) => Array.from(t.data.subarray(i * t.shape[1]!, (i + 1) * t.shape[1]!)));

describe('channel scores', () => {
  it('cfsp equals the reference formula with and without producers', () => {
    const rng = new Random(1);
    const down = normalMatrix(rng, 6, 8); // [hidden, intermediate]
    const up = normalMatrix(rng, 8, 6); // [intermediate, hidden]
    const gate = normalMatrix(rng, 8, 6);
    const norms = columnNormsOf(correlatedInputs(rng, 20, 8));
    const a = Array.from(norms.data);
    const got = channelScores({ name: 'mlp', consumer: down, columnNorms: norms, producers: [up, gate], b: 1, c: 1 });
    const ref = cfspReference(rows(down), [rows(up), rows(gate)], a, 1, 1);
    ref.forEach((v, j) => expect(got[j]).toBeCloseTo(v, 10));
    const oneWa = channelScores({ name: 'mlp', consumer: down, columnNorms: norms, b: 2, c: 0.5 });
    cfspReference(rows(down), [], a, 2, 0.5).forEach((v, j) => expect(oneWa[j]).toBeCloseTo(v, 10));
  });

  it('wanda and magnitude channel scores match their definitions', () => {
    const rng = new Random(2);
    const w = normalMatrix(rng, 5, 7);
    const norms = columnNormsOf(correlatedInputs(rng, 20, 7));
    const wanda = channelScores({ name: 'l', consumer: w, columnNorms: norms, metric: 'wanda' });
    const mag = channelScores({ name: 'l', consumer: w, columnNorms: norms, metric: 'magnitude' });
    for (let j = 0; j < 7; j++) {
      const col = Array.from({ length: 5 }, (_, i) => w.data[i * 7 + j]!);
      expect(wanda[j]).toBeCloseTo((col.reduce((s, v) => s + Math.abs(v), 0) * norms.data[j]!) / 5, 10);
      expect(mag[j]).toBeCloseTo(Math.hypot(...col), 10);
    }
  });

  it('groupScores sums heads and rejects ragged groups', () => {
    expect(Array.from(groupScores([1, 2, 3, 4, 5, 6], 3))).toEqual([6, 15]);
    expect(() => groupScores([1, 2, 3], 2)).toThrow(ShapeError);
    expect(() => groupScores([1, NaN], 1)).toThrow(ArgumentError);
  });
});

describe('structured (per layer)', () => {
  it('prunes whole input channels or heads, keepCount(units, s) of them, by score', () => {
    const rng = new Random(3);
    const w = normalMatrix(rng, 4, 12);
    const norms = columnNormsOf(correlatedInputs(rng, 30, 12));
    const neurons = structuredPrune({ name: 'down', weight: w, stats: { columnNorms: norms }, config: { sparsity: 0.5, metric: 'wanda' } });
    const scores = channelScores({ name: 'down', consumer: w, columnNorms: norms, metric: 'wanda' });
    const top = [...scores.keys()].sort((i, j) => scores[j]! - scores[i]! || i - j).slice(0, keepCount(12, 0.5));
    const perColumn = countPerColumn(neurons.mask);
    for (let j = 0; j < 12; j++) expect(perColumn[j]).toBe(top.includes(j) ? 4 : 0);
    expect(Array.from(countPerRow(neurons.mask))).toEqual([6, 6, 6, 6]);
    const heads = structuredPrune({ name: 'o_proj', weight: w, stats: { columnNorms: norms }, config: { sparsity: 0.34, groupSize: 4 } });
    const hc = countPerColumn(heads.mask);
    const keptHeads = [0, 1, 2].filter((h) => hc[h * 4] === 4);
    expect(keptHeads).toHaveLength(keepCount(3, 0.34));
    for (const h of [0, 1, 2]) for (let t = 1; t < 4; t++) expect(hc[h * 4 + t]).toBe(hc[h * 4]);
    expect(() => structuredPrune({ name: 'o_proj', weight: w, stats: { columnNorms: norms }, config: { groupSize: 5 } })).toThrow(/o_proj/);
    expect(() => structuredPrune({ name: 'o_proj', weight: w, config: {} })).toThrow(/o_proj.*columnNorms/);
    expect(() => structuredPrune({ name: 'o_proj', weight: w, stats: { columnNorms: norms }, config: { n: 2, m: 4 } as never })).toThrow(/Unrecognized key/);
  });
});

describe('CFSP budget across blocks', () => {
  it('keeps the size-weighted mean at 1 - sparsity, preserves the order and stays below 1', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 8 }),
        fc.double({ min: 0, max: 0.9, noNaN: true }),
        fc.double({ min: 0.1, max: 10, noNaN: true }),
        (imp, s, a) => {
          const sizes = imp.map((_, i) => 1 + (i % 3));
          const keep = cfspBlockDensities(imp, s, { a, sizes });
          const total = sizes.reduce((x, y) => x + y, 0);
          expect(keep.reduce((acc, k, i) => acc + k * sizes[i]!, 0) / total).toBeCloseTo(1 - s, 9);
          keep.forEach((k) => expect(k).toBeLessThanOrEqual(1 + 1e-12));
          keep.forEach((k) => expect(k).toBeGreaterThan(0));
          for (let i = 0; i < imp.length; i++) for (let j = 0; j < imp.length; j++) if (imp[i]! > imp[j]!) expect(keep[i]).toBeGreaterThanOrEqual(keep[j]! - 1e-12);
        },
      ),
      { numRuns: 100 },
    );
    expect(cfspBlockDensities([0.3, 0.3, 0.3], 0.25)).toEqual([0.75, 0.75, 0.75]);
    // sigmoid(±1) with z-scores ±1: keep ∝ sigmoid, mean 0.5.
    const k = cfspBlockDensities([0, 1], 0.5);
    const s1 = 1 / (1 + Math.exp(-1));
    expect(k[1]! / k[0]!).toBeCloseTo(s1 / (1 - s1), 12);
    expect(() => cfspBlockDensities([], 0.5)).toThrow(ArgumentError);
    expect(() => cfspBlockDensities([1, NaN], 0.5)).toThrow(ArgumentError);
    expect(() => cfspBlockDensities([1], 1)).toThrow(ArgumentError);
  });

  it('gives important blocks more neurons and keeps the best-scored units in each group', () => {
    const rng = new Random(4);
    const blocks = [0.05, 0.3, 0.1].map((importance, b) => ({
      name: `h.${b}`,
      importance,
      groups: [
        { name: 'mlp', scores: Array.from({ length: 16 }, () => rng.uniform()) },
        { name: 'attn', scores: Array.from({ length: 8 }, () => rng.uniform()), groupSize: 2 },
      ],
    }));
    const res = cfspPrune(blocks, { sparsity: 0.5 });
    const kept = res.map((b) => b.groups[0]!.keep.length);
    expect(kept[1]).toBeGreaterThan(kept[2]!);
    expect(kept[2]).toBeGreaterThan(kept[0]!);
    res.forEach((b, i) => {
      for (const g of b.groups) {
        const gs = g.name === 'attn' ? 2 : 1;
        const units = groupScores(blocks[i]!.groups.find((x) => x.name === g.name)!.scores, gs);
        const ref = [...units.keys()].sort((p, q) => units[q]! - units[p]! || p - q).slice(0, g.keep.length).sort((p, q) => p - q);
        expect(Array.from(g.keep)).toEqual(ref);
        expect(g.keep.length).toBe(Math.round(b.density * units.length));
        expect(Array.from(g.channels)).toEqual(ref.flatMap((u) => Array.from({ length: gs }, (_, t) => u * gs + t)));
      }
    });
  });
});
