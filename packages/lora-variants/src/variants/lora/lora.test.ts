import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { getVariant, loraScaling } from '../index.js';
import { perturb, randn } from '../helpers/sparse-testing.js';

describe('LoRA initialization and scaling (PEFT conventions)', () => {
  it('A is U(±1/√in), B is zero, scaling alpha/r or alpha/√r', () => {
    const base = randn(new Random(1), [6, 16]);
    const s = getVariant('lora').init(base, { r: 4, alpha: 16 }, new Random(2));
    expect(s.params.lora_A!.shape).toEqual([4, 16]);
    expect(s.params.lora_B!.shape).toEqual([6, 4]);
    expect(s.params.lora_B!.data.every((v) => v === 0)).toBe(true);
    const bound = 1 / Math.sqrt(16);
    expect(s.params.lora_A!.data.every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(Math.max(...s.params.lora_A!.data.map(Math.abs))).toBeGreaterThan(bound / 2);
    expect(loraScaling({ r: 4, alpha: 16, rslora: false })).toBe(4);
    expect(loraScaling({ r: 4, alpha: 16, rslora: true })).toBe(8);
    // The same seed gives the same adapter.
    expect(getVariant('lora').init(base, { r: 4, alpha: 16 }, new Random(2)).params.lora_A!.data).toEqual(s.params.lora_A!.data);
  });

  it('ΔW = scaling · B A against a loop', () => {
    const rng = new Random(3);
    const base = randn(rng, [5, 7]);
    const s = perturb(getVariant('lora').init(base, { r: 3, alpha: 6, rslora: true }, rng), rng);
    const d = getVariant('lora').delta(s, base);
    const sc = 6 / Math.sqrt(3);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) {
      let v = 0;
      for (let t = 0; t < 3; t++) v += s.params.lora_B!.data[i * 3 + t]! * s.params.lora_A!.data[t * 7 + j]!;
      expect(d.data[i * 7 + j]).toBeCloseTo(sc * v, 5);
    }
  });
});
