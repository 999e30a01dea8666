import { Random, svd } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { spectralAdapterVariant } from './variant.js';
import { describeFamilyVariant, randn, refMatmul, refTranspose, values } from '../helpers/family-testing.js';

const R = 3;
describeFamilyVariant({
  name: 'spectral-adapter',
  config: { r: R },
  closedForm: ([out, inp]) => R * (out + inp),
  // (U + P) S (V + Q)ᵀ − U S Vᵀ, expanded by brute force.
  referenceDelta: (s) => {
    const [u, p, v, q] = ['spectral_U', 'spectral_P', 'spectral_V', 'spectral_Q'].map((n) => values(s.params[n]!));
    const sig = s.params.spectral_S!.data;
    const up = u!.map((x, k) => (x + p![k]!) * sig[k % R]!);
    const vq = v!.map((x, k) => x + q![k]!);
    const us = u!.map((x, k) => x * sig[k % R]!);
    const a = refMatmul(up, refTranspose(vq, 16, R), 12, R, 16);
    const b = refMatmul(us, refTranspose(v!, 16, R), 12, R, 16);
    return a.map((x, k) => x - b[k]!);
  },
  badConfigs: [[{ r: 'x' }, /r:/]],
});

describe('spectral-adapter specifics', () => {
  it('freezes the top-r singular triplets of W; P = U doubles the top-r part', () => {
    const base = randn(new Random(7), [8, 10]);
    const s = spectralAdapterVariant.init(base, { r: 2 }, new Random(8));
    const sigma = svd(base).s.data as Float32Array;
    expect(s.params.spectral_S!.data[0]).toBeCloseTo(sigma[0]!, 4);
    expect(s.params.spectral_S!.data[1]).toBeCloseTo(sigma[1]!, 4);
    s.params.spectral_P!.data.set(s.params.spectral_U!.data);
    const w = spectralAdapterVariant.merge(base, s, { densify: true });
    const after = svd(w).s.data as Float32Array;
    expect(after[0]).toBeCloseTo(2 * sigma[0]!, 3);
    expect(after[1]).toBeCloseTo(2 * sigma[1]!, 3);
    expect(after[2]).toBeCloseTo(sigma[2]!, 3);
  });
});
