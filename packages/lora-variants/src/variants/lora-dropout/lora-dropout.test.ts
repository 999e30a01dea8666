import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters } from '../../tfjs.js';
import { loraDropoutEnsembleForward, loraDropoutVariant, sampleLoRADropoutDelta } from './variant.js';
import { loraDropoutEnsemble } from './tfjs.js';
import { describeFamilyVariant, maxAbsDiff, randn, refMatmul, refTranspose, values } from '../helpers/family-testing.js';

describeFamilyVariant({
  name: 'lora-dropout',
  config: { r: 4, alpha: 8, p: 0.02 },
  closedForm: ([out, inp]) => 4 * (out + inp),
  referenceDelta: (s) => refMatmul(values(s.params.lora_B!), values(s.params.lora_A!), 12, 4, 16).map((v) => 2 * v),
  badConfigs: [
    [{ p: 1 }, /p:/],
    [{ dropout: 0.1 }, /dropout/],
    [{ seed: 0.5 }, /seed/],
  ],
});

function trainedState(p: number) {
  const rng = new Random(1);
  const base = randn(rng, [6, 8]);
  const s = loraDropoutVariant.init(base, { r: 3, alpha: 3, p }, rng);
  s.params.lora_B!.data.set(randn(rng, [6, 3]).data);
  return { base, s, full: values(loraDropoutVariant.delta(s, base)) };
}

/** Checks d = diag(mB) full diag(mA) / keep² for 0/1 masks; returns the masks. */
function masksOf(d: ArrayLike<number>, full: Float64Array, keep: number): { rows: number[]; cols: number[] } {
  const rows = Array.from({ length: 6 }, (_, i) => (Array.from({ length: 8 }, (_, j) => d[i * 8 + j]!).some((v) => v !== 0) ? 1 : 0));
  const cols = Array.from({ length: 8 }, (_, j) => (Array.from({ length: 6 }, (_, i) => d[i * 8 + j]!).some((v) => v !== 0) ? 1 : 0));
  for (let i = 0; i < 6; i++) for (let j = 0; j < 8; j++) expect(d[i * 8 + j]!).toBeCloseTo((rows[i]! * cols[j]! * full[i * 8 + j]!) / keep ** 2, 4);
  return { rows, cols };
}

describe('lora-dropout specifics', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('a sampled ΔW drops whole output rows and input columns and rescales the rest; its mean is ΔW', () => {
    const { s, full } = trainedState(0.5);
    const rng = new Random(2);
    const mean = new Float64Array(48);
    let dropped = 0;
    const n = 4000;
    for (let t = 0; t < n; t++) {
      const d = sampleLoRADropoutDelta(s, rng);
      if (t < 5) {
        const m = masksOf(d.data, full, 0.5);
        dropped += m.rows.filter((x) => x === 0).length + m.cols.filter((x) => x === 0).length;
      }
      d.data.forEach((v, k) => (mean[k]! += v / n));
    }
    expect(dropped).toBeGreaterThan(0);
    expect(maxAbsDiff(mean, full)).toBeLessThan(0.15 * Math.max(...full.map(Math.abs)));
  });

  it('the per-layer ensemble is the mean of the sampled forwards (brute force) and approaches the merged forward', () => {
    const { base, s, full } = trainedState(0.3);
    const x = randn(new Random(3), [5, 8]);
    const y = loraDropoutEnsembleForward(x, base, s, { samples: 7, rng: new Random(4) });
    const ref = new Float64Array(30);
    const rng2 = new Random(4);
    for (let t = 0; t < 7; t++) {
      const d = sampleLoRADropoutDelta(s, rng2);
      const w = values(base).map((v, k) => v + d.data[k]!);
      refMatmul(values(x), refTranspose(w, 6, 8), 5, 8, 6).forEach((v, k) => (ref[k]! += v / 7));
    }
    expect(maxAbsDiff(y.data, ref)).toBeLessThan(1e-4);
    const big = loraDropoutEnsembleForward(x, base, s, { samples: 3000, rng: new Random(5) });
    const merged = refMatmul(values(x), refTranspose(values(base).map((v, k) => v + full[k]!), 6, 8), 5, 8, 6);
    expect(maxAbsDiff(big.data, merged)).toBeLessThan(0.1 * Math.max(...merged.map(Math.abs)));
    expect(() => loraDropoutEnsembleForward(x, base, s, { samples: 0, rng: rng2 })).toThrow(/samples must be a positive integer/);
  });

  it('tfjs: masks while training, the expected weight otherwise; the model ensemble averages sampled outputs', () => {
    const { base } = trainedState(0.4);
    const model = attachAdapters({ fc: tf.variable(tf.tensor(base.data, [6, 8]), false) }, { targets: 'fc', variant: 'lora-dropout', config: { r: 3, alpha: 3, p: 0.4, seed: 9 }, seed: 0 });
    const [, b] = model.trainableVariables() as [tf.Variable, tf.Variable];
    b.assign(tf.tensor(randn(new Random(7), [6, 3]).data, [6, 3]));
    const st = model.adapterStates()['fc']!;
    const fullM = values(loraDropoutVariant.delta(st as never, base));
    model.training = true;
    const d1 = Float64Array.from(model.effectiveWeight('fc').dataSync(), (v, k) => v - base.data[k]!);
    const d2 = Float64Array.from(model.effectiveWeight('fc').dataSync(), (v, k) => v - base.data[k]!);
    masksOf(d1, fullM, 0.6);
    masksOf(d2, fullM, 0.6);
    expect(maxAbsDiff(d1, d2)).toBeGreaterThan(0); // fresh masks each call
    model.training = false;
    expect(maxAbsDiff(Float64Array.from(model.effectiveWeight('fc').dataSync(), (v, k) => v - base.data[k]!), fullM)).toBeLessThan(1e-5);
    const x = tf.tensor(randn(new Random(8), [4, 8]).data, [4, 8]);
    const yEnsemble = loraDropoutEnsemble(model, 2000, () => tf.matMul(x, model.effectiveWeight('fc'), false, true)).dataSync();
    expect(model.training).toBe(false);
    const yMean = tf.matMul(x, model.effectiveWeight('fc'), false, true).dataSync();
    expect(maxAbsDiff(yEnsemble, yMean)).toBeLessThan(0.1 * Math.max(...Array.from(yMean, Math.abs)));
    const ySmall = loraDropoutEnsemble(model, 2, () => tf.matMul(x, model.effectiveWeight('fc'), false, true)).dataSync();
    expect(maxAbsDiff(ySmall, yMean)).toBeGreaterThan(1e-3);
  });
});
