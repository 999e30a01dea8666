// The decoder's pruned KV cache (DecoderOptions.kv): with nothing pruned it is the dense decoder; with
// pruning it is the dense decoder whose attention runs over K and V pruned per token by hand (a hook
// below computes q, k, v from the layer input, prunes k and v per kv head by magnitude, and puts dense
// attention over that cache in place of the attention output), for gpt and llama (GQA), with and
// without a static attention pattern.

import { registerCPUKernels } from '@sparse/kernels-cpu';
import { decoderTestValues } from '../testing/decode.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder, type DecoderActivationHook, type DecoderOptions } from './decode.js';
import { resolveSpec } from './index.js';
import type { ModelSpec } from './types.js';

const VOCAB = 13;
const CTX = 12;

const SPECS: Record<string, ModelSpec> = {
  gpt: { architecture: 'gpt', vocab: VOCAB, ctx: CTX, d: 16, layers: 2, heads: 2, mlpRatio: 2 },
  'llama gqa': { architecture: 'llama', vocab: VOCAB, ctx: CTX, d: 32, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 24 },
};

/** Sliding window of 3 with one sink (kept keys in two runs) and a plain window of 3 (one run). */
const PATTERNS: Record<string, { spec: Record<string, unknown>; allowed: (i: number, j: number) => boolean }> = {
  'window 3 + 1 sink': { spec: { pattern: 'sliding-window', window: 3, sinks: 1, blockSize: 2 }, allowed: (i, j) => j <= i && (j < 1 || i - j < 3) },
  'window 3': { spec: { pattern: 'sliding-window', window: 3, blockSize: 4 }, allowed: (i, j) => j <= i && i - j < 3 },
};

const values = decoderTestValues;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** x [hd] with all but the `keep` largest |x| set to zero (ties to the lower index), written by hand. */
function pruneRow(x: Float32Array, keep: number): Float32Array {
  const order = Array.from(x.keys()).sort((a, b) => Math.abs(x[b]!) - Math.abs(x[a]!) || a - b);
  const out = new Float32Array(x.length);
  for (const c of order.slice(0, keep)) out[c] = x[c]!;
  return out;
}

/**
 * A hook for the dense decoder that replaces its attention output by dense attention over K and V
 * pruned per token and kv head to `sparsity` (kept: hd - round(sparsity · hd)), under `allowed`.
 */
function prunedAttentionHook(spec: ModelSpec, vals: Map<string, Float32Array>, sparsity: number, allowed: (i: number, j: number) => boolean = (i, j) => j <= i): DecoderActivationHook {
  const full = resolveSpec(spec) as unknown as { architecture: 'gpt' | 'llama'; d: number; heads: number; kvHeads?: number; ropeTheta?: number; layers: number };
  const { d, heads } = full;
  const llama = full.architecture === 'llama';
  const kvHeads = llama ? full.kvHeads! : heads;
  const hd = d / heads;
  const kvw = kvHeads * hd;
  const keep = Math.max(1, hd - Math.round(sparsity * hd));
  const K: Float32Array[][] = [];
  const V: Float32Array[][] = [];
  const Q: Float32Array[][] = [];
  for (let b = 0; b < full.layers; b++) {
    K.push([]);
    V.push([]);
    Q.push([]);
  }
  /** y [out] = W [out, in] x (+ b), in float64. */
  const mv = (w: Float32Array, bias: Float32Array | undefined, x: Float32Array, xo: number, inp: number, out: number): Float32Array => {
    const y = new Float32Array(out);
    for (let o = 0; o < out; o++) {
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < inp; i++) s += w[o * inp + i]! * x[xo + i]!;
      y[o] = s;
    }
    return y;
  };
  const rope = (x: Float32Array, nHeads: number, pos: number) => {
    const half = hd / 2;
    for (let h = 0; h < nHeads; h++) {
      for (let j = 0; j < half; j++) {
        const angle = pos * Math.pow(full.ropeTheta!, -(2 * j) / hd);
        const c = Math.fround(Math.cos(angle));
        const s = Math.fround(Math.sin(angle));
        const x1 = x[h * hd + j]!;
        const x2 = x[h * hd + j + half]!;
        x[h * hd + j] = x1 * c - x2 * s;
        x[h * hd + j + half] = x2 * c + x1 * s;
      }
    }
  };
  const pruneHeads = (x: Float32Array): Float32Array => {
    const out = new Float32Array(kvw);
    for (let g = 0; g < kvHeads; g++) out.set(pruneRow(x.slice(g * hd, (g + 1) * hd), keep), g * hd);
    return out;
  };
  return (site, x, n) => {
    const b = site.block;
    if (site.role === 'attn.qkv' || site.role === 'attn.q') {
      Q[b] = [];
      for (let t = 0; t < n; t++) {
        const pos = K[b]!.length;
        let q: Float32Array;
        let k: Float32Array;
        let v: Float32Array;
        if (llama) {
          const p = `model.layers.${b}.self_attn.`;
          q = mv(vals.get(`${p}q_proj.weight`)!, undefined, x, t * d, d, d);
          k = mv(vals.get(`${p}k_proj.weight`)!, undefined, x, t * d, d, kvw);
          v = mv(vals.get(`${p}v_proj.weight`)!, undefined, x, t * d, d, kvw);
          rope(q, heads, pos);
          rope(k, kvHeads, pos);
        } else {
          const qkv = mv(vals.get(`h.${b}.attn.c_attn.weight`)!, vals.get(`h.${b}.attn.c_attn.bias`), x, t * d, d, 3 * d);
          q = qkv.slice(0, d);
          k = qkv.slice(d, 2 * d);
          v = qkv.slice(2 * d);
        }
        Q[b]!.push(q);
        K[b]!.push(pruneHeads(k));
        V[b]!.push(pruneHeads(v));
      }
    } else if (site.role === 'attn.out') {
      const total = K[b]!.length;
      for (let t = 0; t < n; t++) {
        const i = total - n + t;
        const q = Q[b]![t]!;
        for (let h = 0; h < heads; h++) {
          const g = Math.floor(h / (heads / kvHeads));
          const scores: number[] = [];
          for (let j = 0; j <= i; j++) {
            if (!allowed(i, j)) continue;
            let s = 0;
            for (let c = 0; c < hd; c++) s += q[h * hd + c]! * K[b]![j]![g * hd + c]!;
            scores.push(s / Math.sqrt(hd));
          }
          const max = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - max));
          const sum = e.reduce((a, c) => a + c, 0);
          for (let c = 0; c < hd; c++) {
            let acc = 0;
            let at = 0;
            for (let j = 0; j <= i; j++) if (allowed(i, j)) acc += e[at++]! * V[b]![j]![g * hd + c]!;
            x[t * d + h * hd + c] = acc / sum;
          }
        }
      }
    }
    return undefined;
  };
}

const IDS = [1, 5, 9, 3, 3, 0, 12, 7, 2, 4, 8];
/** Prefill the first 5 (in chunks of 2), then step through the rest: every position's logits. */
function run(dec: Decoder): Float32Array[] {
  const out = [Float32Array.from(dec.prefill(IDS.slice(0, 5)))];
  for (let t = 5; t < IDS.length; t++) out.push(Float32Array.from(dec.step(IDS[t]!)));
  return out;
}

const BACKENDS: string[] = ['reference'];

describe('Decoder with a pruned KV cache', () => {
  let native: ReturnType<typeof registerCPUKernels>;
  beforeAll(() => {
    native = registerCPUKernels();
    if (native.native && native.kernels.includes('attentionBitmapKV')) BACKENDS.push('sparse-cpu');
  });
  afterAll(() => native.unregister());

  const ref = { backend: 'reference', prefillChunk: 2 } as const;

  for (const key of Object.keys(SPECS)) {
    describe(key, () => {
      const spec = SPECS[key]!;
      const vals = values(spec, key.length * 11 + 3);

      it('sparsity 0: the dense decoder', () => {
        const want = run(Decoder.fromValues(spec, vals, ref));
        for (const backend of BACKENDS) {
          const dec = Decoder.fromValues(spec, vals, { ...ref, kv: { sparsity: 0, backend } });
          const got = run(dec);
          for (let t = 0; t < got.length; t++) expect(maxDiff(got[t]!, want[t]!), `${backend} position ${t}`).toBeLessThan(1e-5);
          expect(dec.kvStats().sparsity).toBe(0);
        }
      });

      it('sparsity 0.5: dense attention over K and V pruned by hand, the requested sparsity, fewer bytes', () => {
        const want = run(Decoder.fromValues(spec, vals, { ...ref, activation: prunedAttentionHook(spec, vals, 0.5) }));
        // pruning half of K and V changes the logits (the comparison below means something)
        expect(maxDiff(want.at(-1)!, run(Decoder.fromValues(spec, vals, ref)).at(-1)!)).toBeGreaterThan(1e-3);
        for (const backend of BACKENDS) {
          const dec = Decoder.fromValues(spec, vals, { ...ref, kv: { sparsity: 0.5, backend } });
          const got = run(dec);
          for (let t = 0; t < got.length; t++) expect(maxDiff(got[t]!, want[t]!), `${backend} position ${t}`).toBeLessThan(1e-4);
          const s = dec.kvStats();
          expect(s.positions).toBe(IDS.length);
          expect(s.sparsity).toBeCloseTo(0.5, 12);
          expect(s.denseBytes).toBe(2 * IDS.length * resolveKvWidth(spec) * 4 * 2);
          expect(s.bytes).toBeLessThan(s.denseBytes);
          expect(dec.kvBytes()).toBe(s.bytes);
        }
      });

      it('K and V sparsities apart (0.25 and 0.75) give their mean', () => {
        const dec = Decoder.fromValues(spec, vals, { ...ref, kv: { kSparsity: 0.25, vSparsity: 0.75 } });
        run(dec);
        expect(dec.kvStats().sparsity).toBeCloseTo(0.5, 12);
        dec.reset();
        expect(dec.kvStats()).toEqual({ positions: 0, bytes: 0 + 2 * 4 * 2, denseBytes: 0, sparsity: 0 });
        // after a reset the cache starts empty: the same logits again
        const again = run(dec);
        const fresh = run(Decoder.fromValues(spec, vals, { ...ref, kv: { kSparsity: 0.25, vSparsity: 0.75 } }));
        for (let t = 0; t < again.length; t++) expect(maxDiff(again[t]!, fresh[t]!)).toBe(0);
      });

      for (const [name, p] of Object.entries(PATTERNS)) {
        it(`the model's static attention pattern still applies (${name})`, () => {
          const patterned = { ...spec, attention: p.spec } as ModelSpec;
          const dense = run(Decoder.fromValues(patterned, vals, ref));
          const want = run(Decoder.fromValues(patterned, vals, { ...ref, activation: prunedAttentionHook(patterned, vals, 0.5, p.allowed) }));
          for (const backend of BACKENDS) {
            const zero = run(Decoder.fromValues(patterned, vals, { ...ref, kv: { sparsity: 0, backend } }));
            for (let t = 0; t < zero.length; t++) expect(maxDiff(zero[t]!, dense[t]!), `${backend} sparsity 0, position ${t}`).toBeLessThan(1e-5);
            const got = run(Decoder.fromValues(patterned, vals, { ...ref, kv: { sparsity: 0.5, backend } }));
            for (let t = 0; t < got.length; t++) expect(maxDiff(got[t]!, want[t]!), `${backend} sparsity 0.5, position ${t}`).toBeLessThan(1e-4);
          }
          // and the pattern matters here: without it the logits differ
          const unpatterned = run(Decoder.fromValues(spec, vals, { ...ref, kv: { sparsity: 0.5 } }));
          expect(maxDiff(unpatterned.at(-1)!, want.at(-1)!)).toBeGreaterThan(1e-3);
        });
      }
    });
  }

  it('the dense decoder reports its cache bytes too', () => {
    const spec = SPECS.gpt!;
    const dec = Decoder.fromValues(spec, values(spec, 1), { backend: 'reference' });
    dec.prefill([1, 2, 3]);
    expect(dec.kvPruned).toBe(false);
    expect(dec.kvStats()).toEqual({ positions: 3, bytes: 2 * 3 * 16 * 4 * 2, denseBytes: 2 * 3 * 16 * 4 * 2, sparsity: 0 });
  });

  it.each<[DecoderOptions['kv'], RegExp]>([
    [{ sparsity: 1 }, /kv\.sparsity must be a number in \[0, 1\)/],
    [{ kSparsity: -0.1 }, /kv\.kSparsity/],
    [{ sparsity: 0.5, vSparsity: Number.NaN }, /kv\.vSparsity/],
  ])('rejects kv %j', (kv, re) => {
    const spec = SPECS.gpt!;
    expect(() => Decoder.fromValues(spec, values(spec, 1), { kv })).toThrow(re);
  });
});

function resolveKvWidth(spec: ModelSpec): number {
  const s = spec as unknown as { d: number; heads: number; kvHeads?: number };
  return spec.architecture === 'llama' ? (s.kvHeads! * s.d) / s.heads : s.d;
}
