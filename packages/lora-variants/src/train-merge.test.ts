// Train == merge, for every registered variant with a tfjs form (a loop over the registry, so a new
// variant is covered by registering it): on a 2:4 base, after a few training steps, the function the
// adapter trained is the function the merged model computes, and the merged weights are still 2:4.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters, listTfForms, registerTfForm, type AdapterModel } from './tfjs.js';
import { loraVariant } from './variants/lora/variant.js';
import { getVariant, registerVariant } from './variants/registry.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const SHAPES = { 'h.0.up': [16, 8], 'h.0.down': [8, 16] } as const;
const BATCH = 12;

/** A [out, in] weight with exactly 2 of every 4 consecutive entries of each row kept (largest |w|). */
function twoFour(rng: Random, out: number, inp: number): Float32Array {
  const w = Float32Array.from({ length: out * inp }, () => rng.normal(0, 0.5));
  for (let g = 0; g < w.length; g += 4) {
    const order = [0, 1, 2, 3].sort((a, b) => Math.abs(w[g + b]!) - Math.abs(w[g + a]!));
    w[g + order[2]!] = 0;
    w[g + order[3]!] = 0;
  }
  return w;
}

/** Configs where a variant's defaults would not fit these small layers, or where a data-aware init needs its statistics. */
function configFor(variant: string, inp: number, out: number, rng: Random): Record<string, unknown> {
  switch (variant) {
    case 'lora-sb':
      return { r: 2, gradient: { data: Float32Array.from({ length: out * inp }, () => rng.normal()), shape: [out, inp], stride: [inp, 1], offset: 0, dtype: 'float32' } };
    case 'corda': {
      // a covariance C = XᵀX / n of random inputs
      const n = 32;
      const x = Float64Array.from({ length: n * inp }, () => rng.normal());
      const c = new Float32Array(inp * inp);
      for (let i = 0; i < inp; i++) for (let j = 0; j < inp; j++) for (let t = 0; t < n; t++) c[i * inp + j]! += (x[t * inp + i]! * x[t * inp + j]!) / n;
      return { r: 2, covariance: { data: c, shape: [inp, inp], stride: [inp, 1], offset: 0, dtype: 'float32' } };
    }
    case 'clover':
      return { heads: 2 };
    case 'smt':
      return { blockSize: 4, blocks: 2 };
    case 'mosa':
      return { r: 4, modules: 2 };
    case 's2ft':
      return { groupSize: 4, groups: 1 };
    default:
      return {};
  }
}

interface Net {
  model: AdapterModel;
  x: tf.Tensor2D;
  weights: Record<string, tf.Variable>;
  biases: Record<string, tf.Variable>;
}

/** Two linear layers with a nonlinearity between, both adapted; logits through the adapter's current weights. */
function logits(net: Net): Float32Array {
  return tf.tidy(() => {
    const lin = (x: tf.Tensor2D, n: string) => tf.add(tf.matMul(x, net.model.effectiveWeight(n), false, true), net.model.effectiveBias(n) ?? 0) as tf.Tensor2D;
    return lin(tf.tanh(lin(net.x, 'h.0.up')), 'h.0.down').dataSync() as Float32Array;
  });
}

function build(variant: string, seed: number, densify = false): Net {
  const rng = new Random(seed);
  const weights: Record<string, tf.Variable> = {};
  const biases: Record<string, tf.Variable> = {};
  const configs: Record<string, Record<string, unknown>> = {};
  for (const [n, [out, inp]] of Object.entries(SHAPES)) {
    weights[n] = tf.variable(tf.tensor(twoFour(rng, out, inp), [out, inp]), false);
    biases[n] = tf.variable(tf.tensor(Float32Array.from({ length: out }, () => rng.normal(0, 0.1))), false);
    configs[n] = configFor(variant, inp, out, rng);
  }
  const model = attachAdapters(weights, { biases, targets: Object.keys(SHAPES), variant, seed, densify, layerConfig: (n) => configs[n] });
  const x = tf.tensor2d(Float32Array.from({ length: BATCH * 8 }, () => rng.normal()), [BATCH, 8]);
  return { model, x, weights, biases };
}

/** A few Adam steps toward random targets, with every adapter tensor first moved off its init so ΔW is not zero. */
function train(net: Net, seed: number): void {
  const rng = new Random(seed + 1);
  for (const v of net.model.trainableVariables()) {
    v.assign(tf.add(v, tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal(0, 0.05)), v.shape)));
  }
  const target = tf.tensor2d(Float32Array.from({ length: BATCH * 8 }, () => rng.normal()), [BATCH, 8]);
  const opt = tf.train.adam(0.02);
  net.model.training = true;
  for (let s = 0; s < 4; s++) {
    opt.minimize(() => {
      const lin = (x: tf.Tensor2D, n: string) => tf.add(tf.matMul(x, net.model.effectiveWeight(n), false, true), net.model.effectiveBias(n) ?? 0) as tf.Tensor2D;
      return tf.losses.meanSquaredError(target, lin(tf.tanh(lin(net.x, 'h.0.up')), 'h.0.down')) as tf.Scalar;
    }, false, net.model.trainableVariables());
  }
  net.model.training = false;
  opt.dispose();
  target.dispose();
}

/** Each group of 4 along a row has at most 2 nonzeros, and no entry the base pruned is nonzero. */
function checkTwoFour(merged: Float32Array, base: Float32Array, name: string): void {
  for (let g = 0; g < merged.length; g += 4) {
    let nz = 0;
    for (let k = g; k < g + 4; k++) {
      if (merged[k] !== 0) nz++;
      if (base[k] === 0) expect(merged[k], `${name}[${k}] was pruned`).toBe(0);
    }
    expect(nz, `${name} group at ${g}`).toBeLessThanOrEqual(2);
  }
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!)), 0);

describe('train == merge on a 2:4 base', () => {
  const variants = listTfForms();
  it('covers every variant with a tfjs form', () => {
    expect(variants.length).toBeGreaterThanOrEqual(27);
  });

  it.each(variants)('%s: logits before merge equal the merged model to 1e-5, and the merge stays 2:4', (variant) => {
    const net = build(variant, 7);
    const bases = Object.fromEntries(Object.entries(net.weights).map(([n, w]) => [n, Float32Array.from(w.dataSync() as Float32Array)]));
    const before = logits(net);
    train(net, 7);
    const trained = logits(net);
    // the adapter did move the function, or the comparison below would be vacuous
    expect(maxDiff(trained, before)).toBeGreaterThan(1e-4);
    net.model.mergeAndUnload();
    const merged = logits(net);
    expect(maxDiff(merged, trained)).toBeLessThan(1e-5);
    for (const [n, w] of Object.entries(net.weights)) checkTwoFour(w.dataSync() as Float32Array, bases[n]!, n);
    net.model.dispose();
  });

  // Variants with a config that is not a weight update (a bottleneck adapter) are held to the rule the
  // other way round: their merge is refused with the reason, never skipped. Each such variant has its
  // unmergeable config here; the first test fails when a registered variant declares one without it.
  const UNMERGEABLE: Record<string, Record<string, unknown>> = {
    'sparse-adapter': { r: 4, form: 'bottleneck' },
    mosa: { r: 4, modules: 2, form: 'bottleneck' },
  };
  it('lists an unmergeable config for every variant that declares one', () => {
    expect(variants.filter((v) => getVariant(v).unmergeable !== undefined).sort()).toEqual(Object.keys(UNMERGEABLE).sort());
  });
  it.each(Object.keys(UNMERGEABLE))('%s (unmergeable config): trains, then the merge is refused with its reason and the weights stay', (variant) => {
    const rng = new Random(5);
    const weights = Object.fromEntries(Object.entries(SHAPES).map(([n, [out, inp]]) => [n, tf.variable(tf.tensor(twoFour(rng, out, inp), [out, inp]), false)]));
    const model = attachAdapters(weights, { targets: Object.keys(SHAPES), variant, config: UNMERGEABLE[variant], seed: 5 });
    expect(getVariant(variant).unmergeable!(getVariant(variant).parseConfig(UNMERGEABLE[variant]))).toBeDefined();
    const x = tf.tensor2d(Float32Array.from({ length: BATCH * 8 }, () => rng.normal()), [BATCH, 8]);
    const lin = (h: tf.Tensor2D, n: string) => {
      const y = tf.matMul(h, model.effectiveWeight(n), false, true) as tf.Tensor2D;
      const t = model.outputTerm(n, h);
      return t === null ? y : (tf.add(y, t) as tf.Tensor2D);
    };
    const before = Object.fromEntries(Object.entries(weights).map(([n, w]) => [n, Float32Array.from(w.dataSync() as Float32Array)]));
    const opt = tf.train.adam(0.02);
    for (let s = 0; s < 3; s++) opt.minimize(() => tf.mean(tf.square(lin(tf.tanh(lin(x, 'h.0.up')), 'h.0.down'))) as tf.Scalar, false, model.trainableVariables());
    expect(() => model.merge()).toThrow(/cannot be merged into the weights: .+/);
    for (const [n, w] of Object.entries(weights)) expect(Array.from(w.dataSync())).toEqual(Array.from(before[n]!));
    model.dispose();
    opt.dispose();
  });

  it('densify: the forward trains ΔW everywhere and the merge writes it everywhere', () => {
    const net = build('lora', 9, true);
    train(net, 9);
    const trained = logits(net);
    net.model.merge();
    expect(maxDiff(logits(net), trained)).toBeLessThan(1e-5);
    const up = net.weights['h.0.up']!.dataSync() as Float32Array;
    // the base's pruned half was filled
    expect(up.filter((v) => v === 0).length).toBeLessThan(up.length / 4);
    net.model.unmerge();
    net.model.dispose();
  });

  it('a user-registered variant with a registered tfjs form trains through attachAdapters and is held to the same rule', () => {
    const offVariant = registerVariant({ ...loraVariant, name: 'my-lora', describe: 'LoRA under another name' });
    // its form adds the low-rank delta unmasked: AdapterModel projects it onto the base mask
    const offForm = registerTfForm({
      variant: 'my-lora',
      effectiveWeight: ({ base, vars }) => tf.add(base, tf.matMul(vars.lora_B!, vars.lora_A!)),
    });
    try {
      expect(listTfForms()).toContain('my-lora');
      const net = build('my-lora', 11);
      train(net, 11);
      const trained = logits(net);
      net.model.merge();
      // the core lora merge scales by alpha / r = 1 with the defaults (r 8, alpha 8), as the form does
      expect(maxDiff(logits(net), trained)).toBeLessThan(1e-5);
      net.model.unmerge();
      net.model.dispose();
      expect(() => registerTfForm({ variant: 'my-lora', effectiveWeight: ({ base }) => base })).toThrow(/has a tfjs form already/);
      expect(() => registerTfForm({ variant: 'my-lorra', effectiveWeight: ({ base }) => base })).toThrow(/not a registered variant; did you mean 'my-lora'/);
    } finally {
      offForm();
      offVariant();
    }
    expect(listTfForms()).not.toContain('my-lora');
  });
});
