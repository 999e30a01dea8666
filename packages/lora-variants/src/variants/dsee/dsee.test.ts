import '@tensorflow/tfjs-backend-cpu';
import { count, equals, isKept, maskFromTensor } from '@sparse/masks';
import { Random, svd, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import { dseePruneMask, dseeVariant } from './variant.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { describeVariantContract, prune24, randn } from '../helpers/sparse-testing.js';

function loopDelta(s: IndexedAdapterState, values: string): Float64Array {
  const [out, inp] = s.shape;
  const c = s.config as { r: number; alpha: number; rslora: boolean };
  const scale = c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
  const d = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
    let v = 0;
    for (let t = 0; t < c.r; t++) v += s.params.lora_B!.data[i * c.r + t]! * s.params.lora_A!.data[t * inp + j]!;
    d[i * inp + j] = scale * v;
  }
  s.indices.support!.forEach((p, t) => (d[p] += s.params[values]!.data[t]!));
  return d;
}

describeVariantContract({
  name: 'dsee',
  config: { r: 2, alpha: 2, rslora: true, density: 0.05, decompositionRank: 3 },
  closedForm: ([out, inp], c) => (c.r as number) * (out + inp) + Math.round((c.density as number) * out * inp),
  referenceDelta: (s) => loopDelta(s as IndexedAdapterState, 'dsee_values'),
  densifyChangesMask: true,
  badConfigs: [
    [{ r: 1.5 }, /r/],
    [{ density: -0.1 }, /density/],
    [{ decompositionRank: -1 }, /decompositionRank/],
    [{ sparsity: 0.5 }, /sparsity/],
    [{ prune: { sparsity: 1 } }, /prune\.sparsity/],
    [{ prune: { sparsity: 0.5, structure: 'heads' } }, /prune\.structure/],
    [{ prune: { sparsity: 0.5, n: 2 } }, /prune/],
  ],
});

describe('dsee support Ω', () => {
  it('is the largest |W − L| with L the exact rank-k SVD truncation of W (brute force)', () => {
    const rng = new Random(4);
    const base = randn(rng, [12, 20]);
    const k = 3;
    const { u, s, v } = svd(base);
    const resid = Array.from(base.data, (w, q) => {
      const [i, j] = [Math.floor(q / 20), q % 20];
      let l = 0;
      for (let t = 0; t < k; t++) l += u.data[i * 12 + t]! * s.data[t]! * v.data[j * 12 + t]!;
      return [Math.abs(w - l), q] as const;
    });
    const n = Math.round(0.1 * 240);
    const expected = resid.sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, n).map((e) => e[1]).sort((a, b) => a - b);
    const st = dseeVariant.init(base, { density: 0.1, decompositionRank: k }, rng);
    expect(Array.from(st.indices.support!)).toEqual(expected);
  });

  it('decompositionRank 0 selects by |W|; Ω avoids pruned entries; a too-large rank or density names the field', () => {
    const rng = new Random(5);
    const base = randn(rng, [8, 16]);
    prune24(base);
    const st = dseeVariant.init(base, { density: 0.25, decompositionRank: 0 }, rng);
    const expected = Array.from(base.data, (w, q) => [Math.abs(w), q] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, 32).map((e) => e[1]).sort((a, b) => a - b);
    expect(Array.from(st.indices.support!)).toEqual(expected);
    for (const p of st.indices.support!) expect(base.data[p]).not.toBe(0);
    expect(() => dseeVariant.init(base, { decompositionRank: 9 }, rng)).toThrow(/decompositionRank 9 exceeds min\(out, in\) = 8/);
    expect(() => dseeVariant.init(base, { density: 0.75, decompositionRank: 2 }, rng)).toThrow(/density asks for 96 entries but the base has only 64/);
  });
});

/** A dsee state on `base` with random factors and residual values (a trained adapter). */
function trained(base: ReturnType<typeof randn>, config: Record<string, unknown>, rng: Random): ReturnType<typeof dseeVariant.init> {
  const s = dseeVariant.init(base, { r: 2, decompositionRank: 2, density: 0.1, ...config }, rng);
  for (const p of Object.keys(s.params)) s.params[p] = randn(rng, s.params[p]!.shape, 0.5);
  return s;
}

describe('dsee prune: the sparse final weight', () => {
  it('unstructured: the merge keeps the round((1 − s) · n) largest |W + ΔW| inside the base mask (brute force), zero elsewhere, and maskAfterMerge names them', () => {
    const rng = new Random(7);
    for (const pruneBase of [false, true]) {
      const base = randn(rng, [12, 16]);
      if (pruneBase) prune24(base);
      const s = trained(base, { prune: { sparsity: pruneBase ? 0.7 : 0.6 } }, rng);
      const dense = loopDelta(s, 'dsee_values').map((d, q) => (base.data[q] === 0 ? 0 : base.data[q]! + d));
      const keep = Math.round((1 - (pruneBase ? 0.7 : 0.6)) * 192);
      const expected = new Set(Array.from(dense, (w, q) => [Math.abs(Math.fround(w)), q] as const).filter(([, q]) => base.data[q] !== 0).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, keep).map((e) => e[1]));
      const merged = dseeVariant.merge(base, s);
      for (let q = 0; q < 192; q++) {
        if (expected.has(q)) expect(merged.data[q]).toBeCloseTo(dense[q]!, 5);
        else expect(merged.data[q]).toBe(0);
      }
      const m = dseeVariant.maskAfterMerge(base, s);
      expect(count(m)).toBe(keep);
      for (let q = 0; q < 192; q++) expect(isKept(m, q)).toBe(expected.has(q));
      expect(() => dseeVariant.unmerge(merged, s)).toThrow(/dsee\.unmerge: config\.prune removed weights/);
    }
  });

  it('a base already sparser than the target loses nothing more; densify prunes W + ΔW over every entry', () => {
    const rng = new Random(8);
    const base = randn(rng, [8, 16]);
    const baseMask = prune24(base);
    const s = trained(base, { prune: { sparsity: 0.3 } }, rng);
    expect(equals(dseeVariant.maskAfterMerge(base, s), baseMask)).toBe(true);
    const full = loopDelta(s, 'dsee_values').map((d, q) => base.data[q]! + d);
    const expected = new Set(Array.from(full, (w, q) => [Math.abs(Math.fround(w)), q] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, Math.round(0.7 * 128)).map((e) => e[1]));
    const merged = dseeVariant.merge(base, s, { densify: true });
    for (let q = 0; q < 128; q++) expect(merged.data[q] !== 0).toBe(expected.has(q));
  });

  it('rows: the round(s · out) rows of smallest Σ|W + ΔW| over the base mask go whole (brute force); the other rows keep the masked merge', () => {
    const rng = new Random(9);
    const base = randn(rng, [10, 8]);
    prune24(base);
    const s = trained(base, { prune: { sparsity: 0.3, structure: 'rows' } }, rng);
    const dense = loopDelta(s, 'dsee_values').map((d, q) => (base.data[q] === 0 ? 0 : base.data[q]! + d));
    const norms = Array.from({ length: 10 }, (_, i) => [dense.slice(i * 8, i * 8 + 8).reduce((a, v) => a + Math.abs(Math.fround(v)), 0), i] as const);
    const gone = new Set(norms.sort((a, b) => a[0] - b[0] || b[1] - a[1]).slice(0, 3).map((e) => e[1]));
    const merged = dseeVariant.merge(base, s);
    for (let q = 0; q < 80; q++) {
      if (gone.has(Math.floor(q / 8)) || base.data[q] === 0) expect(merged.data[q]).toBe(0);
      else expect(merged.data[q]).toBeCloseTo(dense[q]!, 5);
    }
    expect(count(dseeVariant.maskAfterMerge(base, s))).toBe(7 * 4);
    expect(() => dseePruneMask(merged, maskFromTensor(randn(rng, [4, 4])), { sparsity: 0.5, structure: 'rows' })).toThrow(/mask \[4, 4\] differs from the weight \[10, 8\]/);
  });

  it('without prune the merge and its mask are the base mask, as before; through AdapterModel a pruned merge replaces the layer mask and a refused unmerge changes nothing', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(10);
    const base = randn(rng, [8, 16]);
    const baseMask = prune24(base);
    expect(equals(dseeVariant.maskAfterMerge(base, trained(base, {}, rng)), baseMask)).toBe(true);
    const weights = { fc: tf.variable(tf.tensor(base.data, [8, 16]), false) };
    const model = attachAdapters(weights, { targets: 'fc', variant: 'dsee', config: { r: 2, decompositionRank: 2, density: 0.1, prune: { sparsity: 0.75 } } });
    for (const v of model.trainableVariables()) v.assign(tf.tensor(randn(rng, v.shape, 0.5).data, v.shape));
    const s = model.adapterStates().fc!;
    const expected = dseeVariant.merge(base, s as never, { mask: baseMask });
    model.merge();
    expect(count(model.mask('fc')!)).toBe(32);
    expect(equals(model.mask('fc')!, maskFromTensor(tensor(expected.data, [8, 16])))).toBe(true);
    expect(() => model.unmerge()).toThrow(/dsee\.unmerge/);
    const w = weights.fc.dataSync();
    for (let q = 0; q < 128; q++) expect(w[q]).toBe(expected.data[q]);
    model.mergeAndUnload();
    model.dispose();
  });
});

describe('dsee prune in PEFT files', () => {
  it('the prune config saves and loads back, and the loaded adapter merges to the same pruned weight', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadPEFTAdapter, savePEFTAdapter } = await import('../../node.js');
    const rng = new Random(12);
    const base = randn(rng, [8, 12]);
    const s = trained(base, { prune: { sparsity: 0.6, structure: 'rows' } }, rng);
    const dir = await mkdtemp(join(tmpdir(), 'dsee-peft-'));
    try {
      await savePEFTAdapter(dir, { 'model.layers.0.mlp.up_proj': s });
      const back = await loadPEFTAdapter(dir);
      expect(back.config).toEqual(s.config);
      const b = back.modules['model.layers.0.mlp.up_proj']!;
      expect(Array.from(dseeVariant.merge(base, b as never).data)).toEqual(Array.from(dseeVariant.merge(base, s).data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
