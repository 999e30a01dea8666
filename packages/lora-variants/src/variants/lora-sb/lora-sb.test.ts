import { Random, svd, tensor } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { loraSBVariant } from './variant.js';
import { describeFamilyVariant, randn, refMatmul, refTranspose, values } from '../helpers/family-testing.js';

const gradient = randn(new Random(99), [12, 16]);
describeFamilyVariant({
  name: 'lora-sb',
  config: { r: 4, gradient },
  closedForm: () => 16,
  referenceDelta: (s) => {
    const core = values(s.params.sb_R!).map((v, k) => v - s.params.sb_R0!.data[k]!);
    return refMatmul(refMatmul(values(s.params.sb_B!), core, 12, 4, 4), values(s.params.sb_A!), 12, 4, 16);
  },
  badConfigs: [
    [{ gradient: [[1, 2]] }, /gradient/],
    [{ stepSize: 0 }, /stepSize/],
    [{ firstStep: 'yes' }, /firstStep/],
  ],
});

describe('lora-sb specifics', () => {
  const base = randn(new Random(1), [10, 14]);
  const g = randn(new Random(2), [10, 14]);

  it('firstStep: ΔW is the best rank-r approximation of the SGD step −η G', () => {
    const eta = 0.1;
    const s = loraSBVariant.init(base, { r: 3, gradient: g, stepSize: eta, firstStep: true }, new Random(3));
    const d = loraSBVariant.delta(s, base);
    const step = Float64Array.from(g.data, (v) => -eta * v);
    const sigma = Array.from(svd(tensor(Float32Array.from(step), [10, 14])).s.data as Float32Array);
    // Eckart–Young: the residual is the tail of the spectrum, and no rank-3 matrix does better.
    const resid = step.reduce((a, v, k) => a + (v - d.data[k]!) ** 2, 0);
    expect(resid).toBeCloseTo(sigma.slice(3).reduce((a, v) => a + v * v, 0), 5);
    expect(svd(d).s.data[3]).toBeCloseTo(0, 5);
    // The step is in the right direction: ⟨ΔW, G⟩ < 0.
    expect(d.data.reduce((a, v, k) => a + v * g.data[k]!, 0)).toBeLessThan(0);
  });

  it('by default the forward starts unchanged while R starts at diag(σ_r) of the step; the gradient is not kept', () => {
    const s = loraSBVariant.init(base, { r: 3, gradient: g }, new Random(3));
    expect(Array.from(loraSBVariant.delta(s, base).data).every((v) => v === 0)).toBe(true);
    const sigma = svd(g).s.data as Float32Array;
    expect(s.params.sb_R!.data[0]).toBeCloseTo(sigma[0]!, 4);
    expect(s.params.sb_R!.data[4]).toBeCloseTo(sigma[1]!, 4);
    expect(s.params.sb_R!.data[1]).toBe(0);
    expect('gradient' in s.config && s.config.gradient !== undefined).toBe(false);
    // B and A are the step's singular vectors: Bᵀ(−G)Aᵀ = diag(σ_r).
    const minusGt = refTranspose(Float64Array.from(g.data, (v) => -v), 10, 14);
    const bt = refMatmul(values(s.params.sb_A!), minusGt, 3, 14, 10); // A (−G)ᵀ
    const core = refMatmul(bt, values(s.params.sb_B!), 3, 10, 3);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(core[i * 3 + j]).toBeCloseTo(i === j ? sigma[i]! : 0, 3);
  });

  it('init errors name the gradient', () => {
    expect(() => loraSBVariant.init(base, { r: 3 }, new Random(1))).toThrow(/lora-sb.init: config.gradient .* is required/);
    expect(() => loraSBVariant.init(base, { r: 3, gradient: randn(new Random(1), [10, 13]) }, new Random(1))).toThrow(/config.gradient is \[10, 13\]/);
    // only R (r x r) trains, whatever the layer's shape
    expect(loraSBVariant.trainableCount([10, 14], { r: 3 })).toBe(9);
    expect(loraSBVariant.trainableCount([40, 7], { r: 5 })).toBe(25);
  });
});
