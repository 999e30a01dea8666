import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { Random } from '@sparse/tensor';
import { createGPT, GPT, gptLoss, gptParamSpecs, initGPTValues, type GPTConfig, type GPTParams } from './gpt.js';
import { crossEntropy, gelu, layerNorm, softmaxRows } from './ops.js';
import { gptReference, moeReference } from './__fixtures__/reference.js';
import { causalMask } from './__fixtures__/causal-mask.js';
import type { LinearInfo } from './types.js';

const tiny: GPTConfig = { vocab: 11, d: 8, layers: 2, heads: 2, ctx: 6, mlpRatio: 2 };

function randomIds(rng: Random, b: number, t: number, vocab: number): tf.Tensor2D {
  const ids = new Int32Array(b * t);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(0, vocab);
  return tf.tensor2d(ids, [b, t], 'int32');
}

/** Values with weights large enough that every path visibly shapes the output. */
function boldValues(cfg: GPTConfig, seed: number): Map<string, Float32Array> {
  const rng = new Random(seed);
  const values = initGPTValues(cfg, rng);
  for (const [name, v] of values) if (!name.includes('ln_')) rng.fillNormal(v, 0, name.startsWith('w') ? 0.5 : 0.4);
  for (const [name, v] of values) if (name.includes('ln_') && name.endsWith('weight')) for (let i = 0; i < v.length; i++) v[i] = 1 + 0.2 * rng.normal();
  return values;
}

function closeRows(got: ArrayLike<number>, want: number[][], tol: number): void {
  const flat = want.flat();
  expect(got.length).toBe(flat.length);
  let worst = 0;
  for (let i = 0; i < flat.length; i++) worst = Math.max(worst, Math.abs(got[i] - flat[i]) / (1 + Math.abs(flat[i])));
  expect(worst).toBeLessThan(tol);
}

beforeAll(async () => {
  await chooseBackend();
});

describe('building blocks match their dense definitions', () => {
  it('softmaxRows equals tf.softmax, including huge logits', () => {
    const x = tf.tensor2d([[1, 2, 3, 4], [1000, 999, -5, 0], [-1e9, 0, 0, -1e9]]);
    expect(Array.from(softmaxRows(x).dataSync())).toEqual(Array.from(tf.softmax(x).dataSync()).map((v) => expect.closeTo(v, 6)));
  });

  it('softmaxRows with a causal period equals tf.softmax after the additive causal mask', () => {
    const t = 4;
    const x = tf.tensor2d(Array.from({ length: 3 * t * t }, (_, i) => Math.sin(i * 1.7) * 5), [3 * t, t]);
    const want = tf.softmax(tf.add(x, causalMask(t, 3)) as tf.Tensor2D).dataSync();
    expect(Array.from(softmaxRows(x, t).dataSync())).toEqual(Array.from(want).map((v) => expect.closeTo(v, 6)));
  });

  it('layerNorm normalizes each row to mean 0, variance 1 before gain and bias', () => {
    const x = tf.tensor2d([[1, 2, 3, 4], [10, -10, 5, 0]]);
    const y = layerNorm(x, tf.ones([4]), tf.zeros([4]));
    const { mean, variance } = tf.moments(y, 1);
    for (const m of mean.dataSync()) expect(m).toBeCloseTo(0, 5);
    for (const v of variance.dataSync()) expect(v).toBeCloseTo(1, 3);
  });

  it('gelu and its custom gradient match the tanh formula under autodiff', () => {
    const xs = [-6, -2.5, -1, -0.3, 0, 0.2, 0.9, 1.7, 3, 7];
    const x = tf.tensor1d(xs);
    const reference = (t: tf.Tensor) =>
      tf.mul(tf.mul(t, 0.5), tf.add(tf.tanh(tf.mul(tf.add(t, tf.mul(tf.pow(t, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1));
    const y = gelu(x).dataSync();
    const want = reference(x).dataSync();
    xs.forEach((_, i) => expect(y[i]).toBeCloseTo(want[i], 5));
    const w = tf.tensor1d(xs.map((_, i) => 1 + i / 10)); // a non-uniform upstream gradient
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), w)))(x).dataSync();
    const gWant = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(reference(t), w)))(x).dataSync();
    xs.forEach((_, i) => expect(g[i]).toBeCloseTo(gWant[i], 5));
  });

  it('crossEntropy equals -mean(log softmax at the target)', () => {
    const logits = tf.tensor2d([[0.5, -1, 2], [3, 0, 0]]);
    const targets = tf.tensor1d([2, 1], 'int32');
    const lp = tf.logSoftmax(logits).arraySync() as number[][];
    const want = -(lp[0][2] + lp[1][1]) / 2;
    expect(crossEntropy(logits, targets).dataSync()[0]).toBeCloseTo(want, 5);
  });
});

describe('GPT', () => {
  it('has GPT-2 parameter names and the expected count', () => {
    const specs = gptParamSpecs(tiny);
    const names = specs.map((s) => s.name);
    expect(names).toContain('wte.weight');
    expect(names).toContain('h.1.attn.c_attn.weight');
    expect(names).toContain('ln_f.bias');
    const { vocab: v, d, ctx, layers } = tiny;
    const h = tiny.mlpRatio * d;
    const perLayer = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * h + h) + (h * d + d);
    const model = createGPT(tiny, { seed: 1 });
    expect(model.numParams()).toBe(v * d + ctx * d + layers * perLayer + 2 * d);
    model.dispose();
  });

  it('initialization is deterministic for a seed', () => {
    const a = initGPTValues(tiny, new Random(5));
    const b = initGPTValues(tiny, new Random(5));
    const c = initGPTValues(tiny, new Random(6));
    expect(a.get('h.0.mlp.c_fc.weight')).toEqual(b.get('h.0.mlp.c_fc.weight'));
    expect(a.get('h.0.mlp.c_fc.weight')).not.toEqual(c.get('h.0.mlp.c_fc.weight'));
  });

  it('rejects a width that the heads do not divide', () => {
    expect(() => createGPT({ ...tiny, d: 9 })).toThrow(/multiple of heads/);
  });

  it('maps ids [B,T] to logits [B,T,V], for any T up to ctx', () => {
    const model = createGPT(tiny, { seed: 1 });
    const rng = new Random(2);
    for (const t of [1, 4, tiny.ctx]) {
      const logits = tf.tidy(() => model.forward(randomIds(rng, 3, t, tiny.vocab)));
      expect(logits.shape).toEqual([3, t, tiny.vocab]);
      expect(Array.from(logits.dataSync()).every(Number.isFinite)).toBe(true);
      logits.dispose();
    }
    expect(() => tf.tidy(() => model.forward(randomIds(rng, 1, tiny.ctx + 1, tiny.vocab)))).toThrow(/exceeds the model context/);
    model.dispose();
  });

  it('is causal: changing a later token leaves earlier logits unchanged', () => {
    const model = createGPT(tiny, { seed: 3 });
    const base = [1, 5, 2, 7, 3, 9];
    const changed = [...base];
    changed[4] = 0;
    const a = tf.tidy(() => model.forward(tf.tensor2d([base], [1, 6], 'int32')).arraySync()[0]);
    const b = tf.tidy(() => model.forward(tf.tensor2d([changed], [1, 6], 'int32')).arraySync()[0]);
    for (let t = 0; t < 4; t++) for (let v = 0; v < tiny.vocab; v++) expect(b[t][v]).toBeCloseTo(a[t][v], 5);
    // and the change is visible from its own position on
    const diff = a[4].reduce((s, x, v) => s + Math.abs(x - b[4][v]), 0);
    expect(diff).toBeGreaterThan(1e-4);
    model.dispose();
  });

  it('starts near the uniform loss ln(vocab)', () => {
    const cfg = { vocab: 63, d: 32, layers: 2, heads: 4, ctx: 16, mlpRatio: 4 };
    const model = createGPT(cfg, { seed: 0 });
    const rng = new Random(4);
    const loss = tf.tidy(() => model.loss(randomIds(rng, 8, 16, 63), randomIds(rng, 8, 16, 63)).dataSync()[0]);
    expect(Math.abs(loss - Math.log(63))).toBeLessThan(0.1);
    model.dispose();
  });

  it('matches a float64 reference forward (weights [out, in], y = x Wᵀ + b)', () => {
    const values = boldValues(tiny, 21);
    expect(gptParamSpecs(tiny).find((p) => p.name === 'h.0.attn.c_attn.weight')!.shape).toEqual([3 * tiny.d, tiny.d]);
    const model = new GPT(tiny, values);
    const ids = [[1, 5, 2, 7, 3], [0, 10, 4, 4, 9]];
    const got = tf.tidy(() => model.logits2d(tf.tensor2d(ids, [2, 5], 'int32')).dataSync());
    closeRows(got, gptReference(tiny, values, ids), 1e-4);
    model.dispose();
  });

  it('linears() lists every linear layer in (block, group) order with its parameter shape', () => {
    const model = createGPT(tiny, { seed: 1 });
    const ls = model.linears();
    expect(ls.map((l) => l.role)).toEqual(['attn.qkv', 'attn.out', 'mlp.up', 'mlp.down', 'attn.qkv', 'attn.out', 'mlp.up', 'mlp.down']);
    expect(ls.map((l) => [l.block, l.group])).toEqual([[0, 0], [0, 1], [0, 2], [0, 3], [1, 0], [1, 1], [1, 2], [1, 3]]);
    for (const l of ls) {
      expect(model.params[l.name].shape).toEqual([l.out, l.in]);
      expect(model.params[l.bias!].shape).toEqual([l.out]);
    }
    expect(model.spec).toEqual({ architecture: 'gpt', ...tiny });
    expect(model.blocks).toBe(2);
    model.dispose();
  });

  it('honours the hooks: weight for every parameter, linearInput per linear, blockOutput per block', () => {
    const values = boldValues(tiny, 22);
    const model = new GPT(tiny, values);
    const ids = tf.tensor2d([[1, 5, 2, 7], [3, 3, 0, 9]], [2, 4], 'int32');
    const seen = new Set<string>();
    const inputs: [LinearInfo, number[]][] = [];
    const blocks: [number, number[]][] = [];
    const zeroed = 'h.1.mlp.c_fc.weight';
    const got = tf.tidy(() =>
      model
        .logits2d(ids, {
          weight: (name, p) => {
            seen.add(name);
            return name === zeroed ? tf.zerosLike(p) : p;
          },
          linearInput: (info, x) => inputs.push([info, x.shape]),
          blockOutput: (b, h) => blocks.push([b, h.shape]),
        })
        .dataSync(),
    );
    expect([...seen].sort()).toEqual(Object.keys(model.params).sort());
    expect(inputs.map(([i, shape]) => [i.name, ...shape])).toEqual(model.linears().map((l) => [l.name, 8, l.in]));
    expect(blocks).toEqual([[0, [8, tiny.d]], [1, [8, tiny.d]]]);
    // the replaced weight is what the forward pass used
    const zero = new Map(values);
    zero.set(zeroed, new Float32Array(values.get(zeroed)!.length));
    closeRows(got, gptReference(tiny, zero, ids.arraySync()), 1e-4);
    // and the last block's output, through ln_f and the tied embedding, gives the logits
    const viaBlock = tf.tidy(() => {
      let last: tf.Tensor2D | undefined;
      const logits = model.logits2d(ids, { blockOutput: (b, h) => { if (b === 1) last = tf.keep(h); } });
      const again = tf.matMul(layerNorm(last!, model.params['ln_f.weight'], model.params['ln_f.bias']), model.params['wte.weight'], false, true);
      last!.dispose();
      return tf.max(tf.abs(tf.sub(logits, again))).dataSync()[0];
    });
    expect(viaBlock).toBeLessThan(1e-5);
    model.dispose();
  });

  it('with a mixture of experts, matches the per-token reference and reports routing and routed inputs', () => {
    const cfg: GPTConfig = { ...tiny, moe: { experts: 3, topK: 2 } };
    const values = boldValues(cfg, 23);
    const model = new GPT(cfg, values);
    const ids = [[1, 5, 2, 7, 3], [0, 10, 4, 4, 9]];
    const routing: [number, number[][], number[][]][] = [];
    const expertRows = new Map<string, number>();
    const got = tf.tidy(() =>
      model
        .logits2d(tf.tensor2d(ids, [2, 5], 'int32'), {
          routing: (b, e, g) => routing.push([b, e.arraySync() as number[][], g.arraySync() as number[][]]),
          linearInput: (info, x) => expertRows.set(info.name, x.shape[0]),
        })
        .dataSync(),
    );
    closeRows(got, gptReference(cfg, values, ids), 1e-4);
    expect(routing.map((r) => r[0])).toEqual([0, 1]);
    // block 0's routing equals the reference on block 0's input
    const ln2In = tf.tidy(() => {
      let x: number[][] = [];
      model.logits2d(tf.tensor2d(ids, [2, 5], 'int32'), { linearInput: (info, h) => { if (info.name === 'h.0.mlp.router.weight') x = h.arraySync() as number[][]; } });
      return x;
    });
    const ref = moeReference(ln2In, values, 'h.0.mlp.', cfg.moe!, () => new Array(tiny.d).fill(0));
    expect(routing[0][1]).toEqual(ref.chosen);
    routing[0][2].forEach((row, r) => row.forEach((g, k) => expect(g).toBeCloseTo(ref.gates[r][k], 5)));
    // each expert's linears saw exactly the tokens routed to it
    for (let e = 0; e < 3; e++) {
      const routed = ref.chosen.filter((c) => c.includes(e)).length;
      expect(expertRows.get(`h.0.mlp.experts.${e}.c_fc.weight`)).toBe(routed);
      expect(expertRows.get(`h.0.mlp.experts.${e}.c_proj.weight`)).toBe(routed);
    }
    const roles = model.linears().filter((l) => l.block === 0).map((l) => `${l.role}${l.expert ?? ''}`);
    expect(roles).toEqual(['attn.qkv', 'attn.out', 'moe.router', 'moe.expert.up0', 'moe.expert.up1', 'moe.expert.up2', 'moe.expert.down0', 'moe.expert.down1', 'moe.expert.down2']);
    model.dispose();
  });

  it('tf.grads through the model matches central finite differences', () => {
    const cfg: GPTConfig = { vocab: 7, d: 4, layers: 1, heads: 2, ctx: 4, mlpRatio: 2 };
    const rng = new Random(9);
    // larger-than-default weights so every path carries a visible gradient
    const values = initGPTValues(cfg, rng);
    for (const [name, v] of values) if (name.endsWith('weight') && !name.includes('ln')) rng.fillNormal(v, 0, 0.5);
    const names = [...values.keys()];
    const ids = tf.tensor2d([[1, 3, 0, 6], [2, 2, 5, 4]], [2, 4], 'int32');
    const targets = tf.tensor2d([[3, 0, 6, 1], [2, 5, 4, 4]], [2, 4], 'int32');
    const lossOf = (vals: Map<string, Float32Array>): number =>
      tf.tidy(() => {
        const p: GPTParams = {};
        for (const spec of gptParamSpecs(cfg)) p[spec.name] = tf.tensor(vals.get(spec.name)!, spec.shape);
        return gptLoss(cfg, p, ids, targets).dataSync()[0];
      });
    const analytic = tf.tidy(() => {
      const specs = gptParamSpecs(cfg);
      const tensors = specs.map((s) => tf.tensor(values.get(s.name)!, s.shape));
      const f = (...xs: tf.Tensor[]) => {
        const p: GPTParams = {};
        specs.forEach((s, i) => (p[s.name] = xs[i]));
        return gptLoss(cfg, p, ids, targets);
      };
      return tf.grads(f)(tensors).map((g) => g.dataSync().slice());
    });
    const eps = 1e-2;
    const probe = new Random(10);
    let checked = 0;
    for (const name of ['wte.weight', 'wpe.weight', 'h.0.attn.c_attn.weight', 'h.0.attn.c_proj.bias', 'h.0.mlp.c_fc.weight', 'h.0.ln_1.weight', 'ln_f.bias']) {
      const k = names.indexOf(name);
      for (let trial = 0; trial < 3; trial++) {
        const i = probe.int(0, values.get(name)!.length);
        const plus = new Map(values);
        const minus = new Map(values);
        const vp = values.get(name)!.slice();
        const vm = values.get(name)!.slice();
        vp[i] += eps;
        vm[i] -= eps;
        plus.set(name, vp);
        minus.set(name, vm);
        const numeric = (lossOf(plus) - lossOf(minus)) / (2 * eps);
        const got = analytic[k][i];
        // float32 forward passes: loose relative tolerance with an absolute floor
        expect(Math.abs(got - numeric), `${name}[${i}] analytic ${got} numeric ${numeric}`).toBeLessThan(2e-3 + 0.05 * Math.abs(numeric));
        checked++;
      }
    }
    expect(checked).toBe(21);
  });

  it('with a mixture of experts, tf.grads matches central finite differences (router and experts)', () => {
    const cfg: GPTConfig = { vocab: 7, d: 4, layers: 1, heads: 2, ctx: 4, mlpRatio: 2, moe: { experts: 3, topK: 2 } };
    const values = boldValues(cfg, 24);
    const specs = gptParamSpecs(cfg);
    const ids = tf.tensor2d([[1, 3, 0, 6], [2, 2, 5, 4]], [2, 4], 'int32');
    const targets = tf.tensor2d([[3, 0, 6, 1], [2, 5, 4, 4]], [2, 4], 'int32');
    const lossOf = (vals: Map<string, Float32Array>): number =>
      tf.tidy(() => {
        const p: GPTParams = {};
        for (const spec of specs) p[spec.name] = tf.tensor(vals.get(spec.name)!, spec.shape);
        return gptLoss(cfg, p, ids, targets).dataSync()[0];
      });
    const analytic = tf.tidy(() => {
      const f = (...xs: tf.Tensor[]) => {
        const p: GPTParams = {};
        specs.forEach((s, i) => (p[s.name] = xs[i]));
        return gptLoss(cfg, p, ids, targets);
      };
      return tf.grads(f)(specs.map((s) => tf.tensor(values.get(s.name)!, s.shape))).map((g) => g.dataSync().slice());
    });
    const eps = 1e-3;
    let checked = 0;
    for (const name of ['h.0.mlp.router.weight', 'h.0.mlp.experts.0.c_fc.weight', 'h.0.mlp.experts.2.c_proj.bias', 'h.0.attn.c_attn.weight']) {
      const k = specs.findIndex((s) => s.name === name);
      for (let i = 0; i < values.get(name)!.length; i += 3) {
        const plus = new Map(values);
        const minus = new Map(values);
        const vp = values.get(name)!.slice();
        const vm = values.get(name)!.slice();
        vp[i] += eps;
        vm[i] -= eps;
        plus.set(name, vp);
        minus.set(name, vm);
        const numeric = (lossOf(plus) - lossOf(minus)) / (2 * eps);
        expect(Math.abs(analytic[k][i] - numeric), `${name}[${i}]`).toBeLessThan(3e-3 + 0.05 * Math.abs(numeric));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
    // the router does get a gradient (through the gates)
    expect(Math.max(...Array.from(analytic[specs.findIndex((s) => s.name === 'h.0.mlp.router.weight')]).map(Math.abs))).toBeGreaterThan(1e-3);
  });
});
