import * as tf from '@tensorflow/tfjs-core';
import type { Site } from '@sparse/activation';
import { registerCPUKernels } from '@sparse/kernels-cpu';
import { gemmReference, gemvSparseInputReference, kernelBackend, registerKernel, type GemmArgs, type GemvSparseInputArgs } from '@sparse/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { ContextOverflowError, Decoder, type DecoderActivationHook } from './decode.js';
import { createModel } from './index.js';
import { modelSites } from './sites.js';
import { decoderTestValues } from '../testing/decode.js';
import type { ForwardHooks, LanguageModel, ModelSpec } from './types.js';

const VOCAB = 13;
const CTX = 10;

const SPECS: Record<string, ModelSpec> = {
  gpt: { architecture: 'gpt', vocab: VOCAB, ctx: CTX, d: 16, layers: 2, heads: 2, mlpRatio: 2 },
  'gpt+moe': { architecture: 'gpt', vocab: VOCAB, ctx: CTX, d: 16, layers: 2, heads: 4, mlpRatio: 2, moe: { experts: 3, topK: 2 } },
  'gpt relu2': { architecture: 'gpt', vocab: VOCAB, ctx: CTX, d: 16, layers: 2, heads: 2, mlpRatio: 2, activation: 'relu2' },
  'llama gqa': { architecture: 'llama', vocab: VOCAB, ctx: CTX, d: 16, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 24 },
  'llama+moe': { architecture: 'llama', vocab: VOCAB, ctx: CTX, d: 16, layers: 2, heads: 4, kvHeads: 1, mlpHidden: 20, moe: { experts: 4, topK: 2 } },
  'llama untied relu': { architecture: 'llama', vocab: VOCAB, ctx: CTX, d: 16, layers: 1, heads: 2, kvHeads: 2, mlpHidden: 24, tiedEmbeddings: false, activation: 'relu' },
  // a [d, d] product after every block norm (random values here: the decoder must apply whatever it holds)
  'gpt rotated': { architecture: 'gpt', vocab: VOCAB, ctx: CTX, d: 16, layers: 2, heads: 2, mlpRatio: 2, normRotation: true },
  'llama+moe rotated': { architecture: 'llama', vocab: VOCAB, ctx: CTX, d: 16, layers: 2, heads: 4, kvHeads: 1, mlpHidden: 20, moe: { experts: 4, topK: 2 }, normRotation: true },
};

const values = decoderTestValues;

const models = new Map<string, LanguageModel>();
function model(key: string): LanguageModel {
  let m = models.get(key);
  if (!m) {
    m = createModel(SPECS[key]!, { values: values(SPECS[key]!, key.length * 7 + 1) });
    models.set(key, m);
  }
  return m;
}

// the tfjs backend for the reference forward (this also registers the native kernels when the addon
// is there: the tests name the kernel backend they mean, the TypeScript reference unless said)
beforeAll(async () => {
  await chooseBackend();
}, 60_000);

afterAll(() => {
  for (const m of models.values()) m.dispose();
});

const REF = { backend: 'reference' } as const;

/** Logits [T][V] of the tfjs full-recompute forward. */
function tfLogits(m: LanguageModel, ids: number[], hooks?: ForwardHooks): Float32Array[] {
  return tf.tidy(() => {
    const y = m.logits2d(tf.tensor2d(ids, [1, ids.length], 'int32'), hooks);
    const data = y.dataSync() as Float32Array;
    return ids.map((_, t) => data.slice(t * VOCAB, (t + 1) * VOCAB));
  });
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Zeroes a fixed, site-dependent third of the channels: exact, so the tfjs and decoder forwards agree bit for bit on what is dropped. */
const dropped = (site: Site, c: number) => (c + site.block + site.name.length) % 3 === 0;
const zeroHook: DecoderActivationHook = (site, x, tokens) => {
  for (let t = 0; t < tokens; t++) for (let c = 0; c < site.features; c++) if (dropped(site, c)) x[t * site.features + c] = 0;
  return undefined;
};
const zeroHookTf: ForwardHooks['activation'] = (site, x) => {
  const keep = new Float32Array(site.features);
  for (let c = 0; c < site.features; c++) keep[c] = dropped(site, c) ? 0 : 1;
  return tf.mul<tf.Tensor2D>(x, tf.tensor1d(keep));
};

const PROMPT = [3, 1, 4];

describe.each(Object.keys(SPECS))('Decoder on %s', (key) => {
  it('greedy decoding through the cache matches the tfjs full recompute at every step', () => {
    const m = model(key);
    const dec = Decoder.fromModel(m, REF);
    const ids = [...PROMPT];
    let logits = Float32Array.from(dec.prefill(ids));
    expect(dec.position).toBe(PROMPT.length);
    const ref0 = tfLogits(m, ids);
    expect(maxDiff(logits, ref0[ids.length - 1]!)).toBeLessThan(1e-4);
    while (ids.length < CTX) {
      const next = argmax(logits);
      ids.push(next);
      logits = Float32Array.from(dec.step(next));
      const ref = tfLogits(m, ids)[ids.length - 1]!;
      expect(maxDiff(logits, ref)).toBeLessThan(1e-4);
      expect(argmax(logits)).toBe(argmax(ref));
    }
    expect(dec.position).toBe(CTX);
    // step by step from the start gives every position's logits
    dec.reset();
    const all = tfLogits(m, ids);
    for (let t = 0; t < ids.length; t++) expect(maxDiff(dec.step(ids[t]!), all[t]!)).toBeLessThan(1e-4);
    // a prefill in chunks of 3 (several chunk passes, the last one short) ends at the same logits
    const chunked = Decoder.fromModel(m, { ...REF, prefillChunk: 3 });
    expect(maxDiff(chunked.prefill(ids), all[ids.length - 1]!)).toBeLessThan(1e-4);
    // prefill after steps continues from the cache
    chunked.reset();
    chunked.step(ids[0]!);
    chunked.step(ids[1]!);
    expect(maxDiff(chunked.prefill(ids.slice(2, 7)), all[6]!)).toBeLessThan(1e-4);
  });

  it('an activation hook that zeroes entries gives the tfjs forward with the same ForwardHooks.activation', () => {
    const m = model(key);
    const ids = [5, 0, 7, 2, 9, 12, 1];
    const seen: string[] = [];
    const dec = Decoder.fromModel(m, {
      ...REF,
      activation: (site, x, tokens) => {
        seen.push(site.name);
        expect(x.length).toBe(tokens * site.features);
        return zeroHook(site, x, tokens);
      },
      stats: true,
    });
    const want = tfLogits(m, ids, { activation: zeroHookTf });
    const plain = tfLogits(m, ids);
    const got = dec.prefill(ids.slice(0, 4));
    expect(maxDiff(got, want[3]!)).toBeLessThan(1e-4);
    expect(maxDiff(want[3]!, plain[3]!)).toBeGreaterThan(1e-2); // the zeroing changes the output
    for (let t = 4; t < ids.length; t++) expect(maxDiff(dec.step(ids[t]!), want[t]!)).toBeLessThan(1e-4);
    // every site the decoder reports is one of the model's sites; without experts, all of them, in the tfjs forward's order
    const sites = modelSites(m.linears()).map((s) => s.name);
    for (const s of seen) expect(sites).toContain(s);
    if (!('moe' in m.spec)) {
      const order: string[] = [];
      tfLogits(m, [1], { activation: (site, x) => (order.push(site.name), x) });
      seen.length = 0;
      dec.reset();
      dec.step(1);
      expect(seen).toEqual(order);
      expect(new Set(seen)).toEqual(new Set(sites));
    }
    // the zeroed third shows in the statistics of the linear inputs
    for (const s of dec.stats()) {
      // an expert no token was routed to has no inputs to count
      if (s.entries === 0 && s.role.startsWith('moe.expert')) continue;
      expect(s.entries, s.site).toBeGreaterThan(0);
      expect(s.density, s.site).toBeLessThan(0.8);
    }
  });
});

describe('Decoder', () => {
  it('adds the hook correction at linear inputs as the tfjs forward adds `add`', () => {
    for (const key of ['gpt', 'llama gqa']) {
      const m = model(key);
      const ids = [2, 8, 8, 4];
      const term = (out: number) => Float32Array.from({ length: out }, (_, o) => 0.05 * ((o % 5) - 2));
      const isTarget = (site: Site) => site.kind === 'linear-input' && site.block === 0 && (site.role === 'mlp.down' || site.role === 'attn.out');
      const want = tfLogits(m, ids, {
        activation: (site, x) => {
          if (!isTarget(site)) return x;
          const row = term(site.out!);
          const add = new Float32Array(ids.length * site.out!);
          for (let t = 0; t < ids.length; t++) add.set(row, t * site.out!);
          return { x, add: tf.tensor2d(add, [ids.length, site.out!]) };
        },
      });
      const dec = Decoder.fromModel(m, {
        ...REF,
        activation: (site, _x, tokens) => {
          if (!isTarget(site)) return undefined;
          const row = term(site.out!);
          const add = new Float32Array(tokens * site.out!);
          for (let t = 0; t < tokens; t++) add.set(row, t * site.out!);
          return add;
        },
      });
      expect(maxDiff(dec.prefill(ids.slice(0, 2)), want[1]!)).toBeLessThan(1e-4);
      expect(maxDiff(dec.step(ids[2]!), want[2]!)).toBeLessThan(1e-4);
      expect(maxDiff(dec.step(ids[3]!), want[3]!)).toBeLessThan(1e-4);
      expect(maxDiff(want[3]!, tfLogits(m, ids)[3]!)).toBeGreaterThan(1e-3);
    }
  });

  it('rejects a correction at an MLP activation and a correction of the wrong size', () => {
    const m = model('gpt');
    const atAct = Decoder.fromModel(m, { activation: (site, x) => (site.kind === 'mlp-activation' ? x : undefined) });
    expect(() => atAct.step(1)).toThrow(/not a linear input/);
    const short = Decoder.fromModel(m, { activation: (site) => (site.kind === 'linear-input' ? new Float32Array(1) : undefined) });
    expect(() => short.step(1)).toThrow(/must be a Float32Array of \d+ values/);
  });

  it('throws ContextOverflowError naming the limit past the context, and starts over after reset()', () => {
    const m = model('llama gqa');
    const dec = Decoder.fromModel(m, REF);
    for (let t = 0; t < CTX; t++) dec.step(t % VOCAB);
    expect(dec.position).toBe(CTX);
    let err: unknown;
    try {
      dec.step(0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ContextOverflowError);
    expect((err as ContextOverflowError).limit).toBe(CTX);
    expect((err as Error).message).toMatch(/context of 10 tokens/);
    expect(dec.position).toBe(CTX);
    dec.reset();
    expect(() => dec.prefill(new Array(CTX + 1).fill(1))).toThrow(ContextOverflowError);
    expect(dec.position).toBe(0);
    expect(maxDiff(dec.prefill([4, 2]), tfLogits(m, [4, 2])[1]!)).toBeLessThan(1e-4);
    expect(() => dec.step(VOCAB)).toThrow(/outside 0\.\.12/);
    expect(() => dec.prefill([])).toThrow(/at least one token/);
  });

  it('steps run every linear layer through gemvSparseInput with W [in, out] (transW), the tied head as stored; prompts through it when whole channels are zero, else through the dense gemm', () => {
    const calls: { rows: number; cols: number; n: number; transW: boolean }[] = [];
    const gemms: { m: number; n: number; k: number }[] = [];
    const undo = [
      registerKernel({
        name: 'gemvSparseInput',
        backend: 'decode-test-spy',
        priority: -100,
        fn: (args: GemvSparseInputArgs) => {
          calls.push({ rows: args.rows, cols: args.cols, n: args.n, transW: args.transW });
          gemvSparseInputReference(args);
        },
      }),
      registerKernel({
        name: 'gemm',
        backend: 'decode-test-spy',
        priority: 1000,
        fn: (args: GemmArgs) => {
          gemms.push({ m: args.m, n: args.n, k: args.k });
          gemmReference(args);
        },
      }),
    ];
    try {
      const m = model('llama gqa');
      const linears = m.linears();
      // dense inputs: no channel is zero for all 3 tokens, so each linear is one dense gemm; the head is the sparse-input kernel
      const dec = Decoder.fromModel(m, { backend: 'decode-test-spy' });
      dec.prefill([1, 2, 3]);
      expect(gemms).toEqual(linears.map((l) => ({ m: 3, n: l.out, k: l.in })));
      expect(calls).toEqual([{ rows: VOCAB, cols: 16, n: 1, transW: false }]);
      // every other input channel zero for every token: the sparse-input kernel with n = 3
      gemms.length = 0;
      calls.length = 0;
      const halved = Decoder.fromModel(m, {
        backend: 'decode-test-spy',
        activation: (site, x) => {
          if (site.kind === 'linear-input') for (let i = 0; i < x.length; i += 2) x[i] = 0;
          return undefined;
        },
      });
      halved.prefill([1, 2, 3]);
      expect(gemms).toEqual([]);
      linears.forEach((l, i) => expect(calls[i]).toEqual({ rows: l.out, cols: l.in, n: 3, transW: true }));
      calls.length = 0;
      dec.step(4);
      expect(calls.length).toBe(linears.length + 1);
      expect(calls.every((c) => c.n === 1)).toBe(true);
      linears.forEach((l, i) => expect(calls[i]).toEqual({ rows: l.out, cols: l.in, n: 1, transW: true }));
      const untied = Decoder.fromModel(model('llama untied relu'), { backend: 'decode-test-spy' });
      calls.length = 0;
      untied.step(4);
      expect(calls.at(-1)).toEqual({ rows: VOCAB, cols: 16, n: 1, transW: true });
    } finally {
      for (const u of undo) u();
    }
  });

  it('fromValues keeps one copy of the model: with release, the map loses its linear weights', () => {
    const spec = SPECS['gpt relu2']!;
    const v = values(spec, 3);
    const m = createModel(spec, { values: v });
    const want = tfLogits(m, [1, 2, 3]);
    m.dispose();
    const dec = Decoder.fromValues(spec, v, { release: true, stats: true });
    expect([...v.keys()].some((k) => k.endsWith('c_fc.weight') || k.endsWith('c_attn.weight'))).toBe(false);
    expect(v.has('wte.weight')).toBe(true);
    expect(maxDiff(dec.prefill([1, 2, 3]), want[2]!)).toBeLessThan(1e-4);
    // squared ReLU leaves zeros at the down projections' inputs; the statistics see them
    const down = dec.stats().filter((s) => s.role === 'mlp.down');
    expect(down).toHaveLength(2);
    for (const s of down) {
      expect(s.entries).toBe(3 * 32);
      expect(s.density).toBeLessThan(0.9);
    }
    dec.resetStats();
    expect(dec.stats().every((s) => s.entries === 0 && s.density === 1)).toBe(true);
    expect(Decoder.fromValues(spec, values(spec, 3)).stats()).toEqual([]);
  });

  it('rejects values that do not fit the spec', () => {
    const spec = SPECS.gpt!;
    const v = values(spec, 1);
    v.delete('h.0.ln_1.bias');
    expect(() => Decoder.fromValues(spec, v)).toThrow(/no value for parameter h\.0\.ln_1\.bias/);
  });

  describe('with the native kernels of @sparse/kernels-cpu', () => {
    let native: ReturnType<typeof registerCPUKernels>;
    beforeAll(() => {
      native = registerCPUKernels();
    });
    afterAll(() => native.unregister());

    it('are what the decoder uses by default when loaded', () => {
      if (!native.native) return;
      expect(kernelBackend('gemvSparseInput')).toBe('sparse-cpu');
      const calls: string[] = [];
      const m = model('gpt');
      const want = tfLogits(m, [1, 2])[1]!;
      const dec = Decoder.fromModel(m, { activation: (site) => void calls.push(site.name) });
      expect(maxDiff(dec.prefill([1, 2]), want)).toBeLessThan(1e-4);
      expect(calls.length).toBeGreaterThan(0);
    });

    it.each(['gpt+moe', 'llama gqa'])('%s: the same logits as the tfjs forward', (key) => {
      if (!native.native || !native.kernels.includes('gemvSparseInput')) return;
      const m = model(key);
      const ids = [1, 5, 9, 3, 3, 0];
      const want = tfLogits(m, ids, { activation: zeroHookTf });
      const dec = Decoder.fromModel(m, { activation: zeroHook, backend: 'sparse-cpu' });
      expect(maxDiff(dec.prefill(ids.slice(0, 3)), want[2]!)).toBeLessThan(1e-4);
      for (let t = 3; t < ids.length; t++) expect(maxDiff(dec.step(ids[t]!), want[t]!)).toBeLessThan(1e-4);
    });
  });
});
