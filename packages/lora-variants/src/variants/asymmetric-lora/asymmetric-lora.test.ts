import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { asymmetricLoRAVariant } from './variant.js';
import { describeFamilyVariant, randn, refMatmul, values } from '../helpers/family-testing.js';

describeFamilyVariant({
  name: 'asymmetric-lora',
  config: { r: 4, alpha: 8 },
  closedForm: ([out]) => out * 4,
  referenceDelta: (s) => refMatmul(values(s.params.lora_B!), values(s.params.lora_A!), 12, 4, 16).map((v) => v * 2),
  badConfigs: [
    [{ r: 0 }, /r:/],
    [{ aInit: 'gaussian' }, /aInit/],
    [{ alpha: -1 }, /alpha/],
  ],
});

describe('asymmetric-lora specifics', () => {
  it('A is U(±1/√in) by default, orthonormal rows with aInit orthogonal; B starts at zero', () => {
    const base = randn(new Random(1), [6, 16]);
    const u = asymmetricLoRAVariant.init(base, { r: 4 }, new Random(2));
    expect(u.params.lora_A!.data.every((v) => Math.abs(v) <= 0.25)).toBe(true);
    expect(u.params.lora_B!.data.every((v) => v === 0)).toBe(true);
    const o = asymmetricLoRAVariant.init(base, { r: 4, aInit: 'orthogonal' }, new Random(2));
    const a = values(o.params.lora_A!);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
      let d = 0;
      for (let k = 0; k < 16; k++) d += a[i * 16 + k]! * a[j * 16 + k]!;
      expect(d).toBeCloseTo(i === j ? 1 : 0, 5);
    }
    expect(() => asymmetricLoRAVariant.init(base, { r: 17, aInit: 'orthogonal' }, new Random(2))).toThrow(/r = 17 exceeds in = 16/);
    expect(asymmetricLoRAVariant.parseConfig({}).rslora).toBe(false);
    // rsLoRA scaling alpha / √r
    const rs = asymmetricLoRAVariant.init(base, { r: 4, alpha: 8, rslora: true }, new Random(2));
    rs.params.lora_B!.data.fill(1);
    const d = asymmetricLoRAVariant.delta(rs, base);
    const ref = refMatmul(values(rs.params.lora_B!), values(rs.params.lora_A!), 6, 4, 16);
    expect(d.data[5]).toBeCloseTo(ref[5]! * 4, 5);
  });
});
