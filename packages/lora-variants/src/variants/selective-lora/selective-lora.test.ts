import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import type { AdapterState } from '../types.js';
import { selectiveIndicator, selectiveLoRAVariant } from './variant.js';
import { describeFamilyVariant, randn } from '../helpers/family-testing.js';

// r = 4 in 2 blocks of 2; scaling alpha / r = 2.
function refBlock(s: AdapterState, b: number): Float64Array {
  const [out, inp] = s.shape;
  const d = new Float64Array(out * inp);
  for (let o = 0; o < out; o++) for (let j = 0; j < inp; j++) for (let t = 2 * b; t < 2 * b + 2; t++) d[o * inp + j]! += 2 * s.params.lora_B!.data[o * 4 + t]! * s.params.lora_A!.data[t * inp + j]!;
  return d;
}
function refDelta(s: AdapterState): Float64Array {
  const d = new Float64Array(s.shape[0] * s.shape[1]);
  for (let b = 0; b < 2; b++) if (s.params.lora_gate!.data[b]! > 0) refBlock(s, b).forEach((v, k) => (d[k]! += v));
  return d;
}

describeFamilyVariant({
  name: 'selective-lora',
  config: { r: 4, alpha: 8, blocks: 2 },
  closedForm: ([out, inp]) => 4 * (out + inp) + 2,
  referenceDelta: refDelta,
  badConfigs: [
    [{ blocks: 0 }, /blocks/],
    [{ gateInit: 'on' }, /gateInit/],
  ],
  // Gates around +0.6: on, mostly (the gate-off case has its own test below).
  perturbMean: { lora_gate: 0.6 },
});

describe('selective-lora specifics', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it("a gate's gradient is ⟨∂L/∂ΔW, its block⟩ (straight-through), and a gate below 0 drops its block", () => {
    const rng = new Random(3);
    const base = randn(rng, [5, 6]);
    const model = attachAdapters({ fc: tf.variable(tf.tensor(base.data, [5, 6]), false) }, { targets: 'fc', variant: 'selective-lora', config: { r: 4, alpha: 8, blocks: 2 } });
    const [, b, gate] = model.trainableVariables() as [tf.Variable, tf.Variable, tf.Variable];
    b.assign(tf.tensor(randn(rng, [5, 4]).data, [5, 4]));
    gate.assign(tf.tensor([0.5, -0.5]));
    const target = tf.tensor(randn(rng, [5, 6]).data, [5, 6]);
    const f = () => tf.sum(tf.mul(model.effectiveWeight('fc'), target)) as tf.Scalar; // ∂f/∂W = target
    const { grads } = tf.variableGrads(f, [gate]);
    const s = model.adapterStates()['fc']!;
    const t = target.dataSync();
    const g = grads[gate.name]!.dataSync();
    for (let blk = 0; blk < 2; blk++) expect(g[blk]).toBeCloseTo(refBlock(s, blk).reduce((a, v, k) => a + v * t[k]!, 0), 4);
    expect(Array.from(selectiveIndicator(s))).toEqual([1, 0]);
    const merged = selectiveLoRAVariant.merge(base, s as never);
    const block0 = refBlock(s, 0);
    for (let k = 0; k < 30; k++) expect(merged.data[k]).toBeCloseTo(base.data[k]! + block0[k]!, 5);
  });

  it('blocks must divide r, and the error names blocks', () => {
    expect(() => selectiveLoRAVariant.init(randn(new Random(1), [3, 3]), { r: 4, blocks: 3 }, new Random(1))).toThrow(/blocks = 3 does not divide r = 4/);
    expect(() => selectiveLoRAVariant.trainableCount([3, 3], { r: 4, blocks: 3 })).toThrow(/blocks/);
  });
});
