import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters, getTfForm, type AdapterModel, type AdapterTrainingHooks } from '../../tfjs.js';
import { selectiveLoRAConfigSchema } from './config.js';
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

  // Two layers, r = 4 in 2 blocks; B = 0 (the init), so ΔW = 0 and the task loss ‖W' − W‖² gives no gate gradient:
  // only the penalty moves the gates. Gates [0.3, 3] in each layer; 20 Adam steps at lr 0.1 (≈ 0.1 per step).
  function gateRun(lambda: number): { model: AdapterModel; finish: ReturnType<NonNullable<AdapterTrainingHooks['finish']>>; hasLoss: boolean } {
    const rng = new Random(5);
    const weights = { 'a.fc': tf.variable(tf.tensor(randn(rng, [5, 6]).data, [5, 6]), false), 'b.fc': tf.variable(tf.tensor(randn(rng, [5, 6]).data, [5, 6]), false) };
    const config = { r: 4, alpha: 8, blocks: 2, lambda };
    const model = attachAdapters(weights, { targets: ['a.fc', 'b.fc'], variant: 'selective-lora', config });
    for (const n of ['a.fc', 'b.fc']) model.layerVariables(n).lora_gate!.assign(tf.tensor([0.3, 3]));
    const hooks = getTfForm('selective-lora')!.training!({ model, adapter: model.activeAdapter!, config: selectiveLoRAConfigSchema.parse(config), steps: 20 });
    const opt = tf.train.adam(0.1);
    const task = () => tf.addN(['a.fc', 'b.fc'].map((n) => tf.sum(tf.square(tf.sub(model.effectiveWeight(n), weights[n as 'a.fc']))))) as tf.Scalar;
    for (let step = 1; step <= 20; step++) {
      opt.minimize(() => {
        const extra = hooks.loss?.();
        return extra === undefined ? task() : (tf.add(task(), extra) as tf.Scalar);
      }, false, model.trainableVariables());
    }
    return { model, finish: hooks.finish!(), hasLoss: hooks.loss !== undefined };
  }

  it('lambda > 0: the loss term is λ · Σ max(g, 0), blocks fall off, stop contributing, and finish counts the active ones', () => {
    const rng = new Random(5);
    const weights = { fc: tf.variable(tf.tensor(randn(rng, [5, 6]).data, [5, 6]), false) };
    const cfg = { r: 4, alpha: 8, blocks: 2, lambda: 0.7 };
    const m = attachAdapters(weights, { targets: 'fc', variant: 'selective-lora', config: cfg });
    m.layerVariables('fc').lora_gate!.assign(tf.tensor([0.4, -2]));
    const h = getTfForm('selective-lora')!.training!({ model: m, adapter: m.activeAdapter!, config: selectiveLoRAConfigSchema.parse(cfg), steps: 1 });
    expect(h.loss!()!.dataSync()[0]).toBeCloseTo(0.7 * 0.4, 6);
    m.dispose();

    const { model, finish, hasLoss } = gateRun(5);
    expect(hasLoss).toBe(true);
    for (const n of ['a.fc', 'b.fc']) {
      // B was 0 (ΔW = 0); give it values: the merge holds block 1 only, the block that is off is absent
      model.layerVariables(n).lora_B!.assign(tf.tensor(randn(new Random(9), [5, 4]).data, [5, 4]));
      const s = model.adapterStates()[n]!;
      expect(Array.from(selectiveIndicator(s))).toEqual([0, 1]);
      const w = model.weights[n]!.dataSync();
      const merged = selectiveLoRAVariant.merge(tensor(Float32Array.from(w), [5, 6]), s as never);
      const block1 = refBlock(s, 1);
      for (let k = 0; k < 30; k++) expect(merged.data[k]).toBeCloseTo(w[k]! + block1[k]!, 5);
    }
    expect(finish.event).toEqual({ event: 'blocks', active: { 'a.fc': 1, 'b.fc': 1 }, on: 2, total: 4 });
    expect(finish.summary).toBe('2 of 4 blocks active');
    expect(finish.log).toMatch(/^2 of 4 blocks active over 2 layers/);
    model.dispose();
  });

  it('lambda 0 (the default): no loss term, the gates keep their values, every block stays on', () => {
    expect(selectiveLoRAConfigSchema.parse({}).lambda).toBe(0);
    const { model, finish, hasLoss } = gateRun(0);
    expect(hasLoss).toBe(false);
    for (const n of ['a.fc', 'b.fc']) expect(Array.from(model.layerVariables(n).lora_gate!.dataSync())).toEqual([Math.fround(0.3), 3]);
    expect(finish.summary).toBe('4 of 4 blocks active');
    model.dispose();
  });

  it('blocks must divide r, and the error names blocks', () => {
    expect(() => selectiveLoRAVariant.init(randn(new Random(1), [3, 3]), { r: 4, blocks: 3 }, new Random(1))).toThrow(/blocks = 3 does not divide r = 4/);
    expect(() => selectiveLoRAVariant.trainableCount([3, 3], { r: 4, blocks: 3 })).toThrow(/blocks/);
  });
});
