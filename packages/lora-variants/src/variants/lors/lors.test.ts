import { isKept, maskFromTensor } from '@sparse/masks';
import { Random, type Float32Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { AdapterState } from '../types.js';
import { lorsVariant } from './variant.js';
import { lorsForm } from './tfjs.js';
import { describeVariantContract, expectClose, perturb, prune24, randn, refMatmulT } from '../helpers/sparse-testing.js';

function lowRank(s: AdapterState): Float64Array {
  const [out, inp] = s.shape;
  const c = s.config as { r: number; alpha: number; rslora: boolean };
  const scale = c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
  const d = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
    let v = 0;
    for (let t = 0; t < c.r; t++) v += s.params.lora_B!.data[i * c.r + t]! * s.params.lora_A!.data[t * inp + j]!;
    d[i * inp + j] = scale * v;
  }
  return d;
}

describeVariantContract({
  name: 'lors',
  config: { r: 2, alpha: 4 },
  closedForm: ([out, inp], c) => (c.r as number) * (out + inp),
  // M ⊙ ΔW, M = the base's nonzeros.
  referenceDelta: (s, base) => lowRank(s).map((v, k) => (base.data[k] === 0 ? 0 : v)),
  densifiedDelta: (s) => lowRank(s),
  densifyChangesMask: true,
  badConfigs: [[{ r: -1 }, /r/], [{ alpha: 0 }, /alpha/], [{ dropout: 0.1 }, /dropout/]],
});

describe('lors', () => {
  it('on a pruned base, forward is the masked weight and equals the default merge (the trained weight is the merged one)', () => {
    const rng = new Random(3);
    const base = randn(rng, [8, 16]);
    prune24(base);
    const s = perturb(lorsVariant.init(base, { r: 3 }, rng), rng);
    const x = randn(rng, [4, 16]);
    const merged = lorsVariant.merge(base, s);
    expectClose(lorsVariant.forward(x, base, s).data, refMatmulT(x, merged), 1e-5);
    // Plain LoRA would run the unmasked W + ΔW, which differs on this base.
    const plainY = refMatmulT(x, { data: lowRank(s).map((v, k) => v + base.data[k]!), shape: [8, 16] });
    const mergedY = refMatmulT(x, merged);
    expect(Math.max(...plainY.map((v, k) => Math.abs(v - mergedY[k]!)))).toBeGreaterThan(1e-3);
  });

  it('the custom-gradient form gives the same value and factor gradients as autodiff through W + M ⊙ (s · B A)', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(4);
    const base = randn(rng, [8, 16]);
    prune24(base);
    const s = perturb(lorsVariant.init(base, { r: 3, alpha: 6 }, rng), rng);
    const mask = maskFromTensor(base);
    const m = tf.tensor(Float32Array.from({ length: 128 }, (_, k) => (isKept(mask, k) ? 1 : 0)), [8, 16]);
    const w = tf.tensor(base.data, [8, 16]);
    const x = tf.tensor(randn(rng, [5, 16]).data, [5, 16]);
    const t = tf.tensor(randn(rng, [5, 8]).data, [5, 8]);
    const a = tf.variable(tf.tensor((s.params.lora_A as Float32Tensor).data, [3, 16]));
    const b = tf.variable(tf.tensor((s.params.lora_B as Float32Tensor).data, [8, 3]));
    const lossOf = (weight: () => tf.Tensor) => () => tf.sum(tf.square(tf.sub(tf.matMul(x, weight(), false, true), t))) as tf.Scalar;
    const viaForm = lossOf(() => lorsForm.effectiveWeight({ base: w, vars: { lora_A: a, lora_B: b }, state: s, mask: m, training: true }));
    const viaAutodiff = lossOf(() => tf.add(w, tf.mul(tf.mul(tf.matMul(b, a), 2), m)));
    const g1 = tf.variableGrads(viaForm, [a, b]);
    const g2 = tf.variableGrads(viaAutodiff, [a, b]);
    expectClose(g1.value.dataSync(), g2.value.dataSync(), 1e-5);
    for (const v of [a, b]) {
      const n = v.name;
      expectClose(g1.grads[n]!.dataSync(), g2.grads[n]!.dataSync(), 1e-4);
      expect(g1.grads[n]!.dataSync().some((q) => q !== 0)).toBe(true);
    }
  });
});
