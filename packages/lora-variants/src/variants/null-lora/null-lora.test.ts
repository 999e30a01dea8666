import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { nullLoRAVariant } from './variant.js';
import { describeFamilyVariant, randn, refMatmul, refTranspose, values } from '../helpers/family-testing.js';

describeFamilyVariant({
  name: 'null-lora',
  config: { r: 3 },
  closedForm: ([out]) => out * 3,
  referenceDelta: (s) => refMatmul(values(s.params.null_B!), values(s.params.null_N!), 12, 3, 16),
  badConfigs: [
    [{ space: 'output' }, /space/],
    [{ r: 0 }, /r:/],
    [{ space: 'inputs', inputs: 'x' }, /inputs/],
  ],
});

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('null-lora specifics', () => {
  it("space 'weight': ΔW vanishes on W's row space (ΔW Wᵀ = 0) for any trained B", () => {
    const base = randn(new Random(1), [6, 10]); // null space of W has dimension 4
    const s = nullLoRAVariant.init(base, { r: 4 }, new Random(2));
    s.params.null_B!.data.set(randn(new Random(3), [6, 4]).data);
    const d = nullLoRAVariant.delta(s, base);
    expect(maxAbs(d.data)).toBeGreaterThan(0.1);
    expect(maxAbs(refMatmul(values(d), refTranspose(values(base), 6, 10), 6, 10, 6))).toBeLessThan(1e-4);
    // N has orthonormal rows
    const n = values(s.params.null_N!);
    const g = refMatmul(n, refTranspose(n, 4, 10), 4, 10, 4);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(g[i * 4 + j]).toBeCloseTo(i === j ? 1 : 0, 5);
  });

  it("space 'inputs': outputs on the calibration data stay exactly as they were", () => {
    const rng = new Random(4);
    // Calibration inputs of rank 5 in 12 dimensions.
    const z = values(randn(rng, [20, 5]));
    const mix = values(randn(rng, [5, 12]));
    const x = tensor(Float32Array.from(refMatmul(z, mix, 20, 5, 12)), [20, 12]) as Float32Tensor;
    const base = randn(rng, [8, 12]);
    const s = nullLoRAVariant.init(base, { r: 6, space: 'inputs', inputs: x }, new Random(5));
    expect(s.config).toEqual({ r: 6, space: 'inputs' });
    s.params.null_B!.data.set(randn(rng, [8, 6]).data);
    const y0 = refMatmul(values(x), refTranspose(values(base), 8, 12), 20, 12, 8);
    const y1 = nullLoRAVariant.forward(x, base, s);
    expect(maxAbs(y1.data.map((v, k) => v - y0[k]!))).toBeLessThan(1e-4 * maxAbs(y0));
    // New inputs off the calibration subspace do see the update.
    const xNew = randn(rng, [4, 12]);
    const yNew = nullLoRAVariant.forward(xNew, base, s);
    const yNew0 = refMatmul(values(xNew), refTranspose(values(base), 8, 12), 4, 12, 8);
    expect(maxAbs(yNew.data.map((v, k) => v - yNew0[k]!))).toBeGreaterThan(0.1);
  });

  it('init errors name the field', () => {
    const base = randn(new Random(1), [4, 6]);
    expect(() => nullLoRAVariant.init(base, { r: 2, space: 'inputs' }, new Random(1))).toThrow(/config.covariance .* or config.inputs .* is required/);
    expect(() => nullLoRAVariant.init(base, { r: 7 }, new Random(1))).toThrow(/r = 7 exceeds in = 6/);
    expect(() => nullLoRAVariant.init(base, { r: 2, space: 'inputs', inputs: randn(new Random(1), [3, 5]) }, new Random(1))).toThrow(/config.inputs is \[3, 5\]/);
    expect(() => nullLoRAVariant.init(base, { r: 2, inputs: randn(new Random(1), [3, 6]) }, new Random(1))).toThrow(/space 'inputs'/);
  });
});
