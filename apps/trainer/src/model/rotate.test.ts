// Norm rotations: the rotated model computes the same logits; every rotation is orthogonal; the stacked
// weights reading each norm have orthogonal columns afterwards (their Gram matrix is diagonal, checked in
// float64 against the unrotated stack's), ordered by non-increasing norm; rotating twice is rotating once.

import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { decoderTestValues } from '../testing/decode.js';
import { createModel, resolveSpec } from './index.js';
import { rotatedNorms, rotateNorms } from './rotate.js';
import type { LanguageModel, ModelSpec } from './types.js';

const SPECS: Record<string, ModelSpec> = {
  gpt: { architecture: 'gpt', vocab: 11, ctx: 8, d: 12, layers: 2, heads: 2, mlpRatio: 2 },
  'gpt+moe': { architecture: 'gpt', vocab: 11, ctx: 8, d: 12, layers: 1, heads: 3, mlpRatio: 2, moe: { experts: 3, topK: 2 } },
  'llama gqa': { architecture: 'llama', vocab: 11, ctx: 8, d: 16, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 20 },
  'llama+moe untied': { architecture: 'llama', vocab: 11, ctx: 8, d: 8, layers: 1, heads: 2, kvHeads: 1, mlpHidden: 6, moe: { experts: 2, topK: 1 }, tiedEmbeddings: false },
};

const disposers: LanguageModel[] = [];
beforeAll(async () => {
  await chooseBackend();
}, 60_000);
afterAll(() => {
  for (const m of disposers) m.dispose();
});

function logits(spec: ModelSpec, values: Map<string, Float32Array>, ids: number[][]): Float32Array {
  const m = createModel(spec, { values });
  disposers.push(m);
  return tf.tidy(() => m.logits2d(tf.tensor2d(ids, [ids.length, ids[0]!.length], 'int32')).dataSync() as Float32Array);
}

/** The Gram matrix (float64) of the rows of several [out, d] weights stacked. */
function gram(ws: Float32Array[], d: number): Float64Array {
  const g = new Float64Array(d * d);
  for (const w of ws) for (let o = 0; o < w.length / d; o++) for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) g[i * d + j]! += w[o * d + i]! * w[o * d + j]!;
  return g;
}

const IDS = [
  [1, 5, 2, 9, 0, 3, 3, 7],
  [10, 4, 4, 6, 8, 2, 1, 0],
];

describe.each(Object.keys(SPECS))('rotateNorms on %s', (key) => {
  const spec = SPECS[key]!;
  const values = decoderTestValues(spec, 3 + key.length);

  it('gives a model with the same logits, orthogonal rotations and readers with orthogonal columns', () => {
    const r = rotateNorms(spec, values);
    expect((r.spec as { normRotation?: boolean }).normRotation).toBe(true);
    const before = logits(spec, values, IDS);
    const after = logits(r.spec, r.values, IDS);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < before.length; i++) {
      worst = Math.max(worst, Math.abs(before[i]! - after[i]!));
      scale = Math.max(scale, Math.abs(before[i]!));
    }
    expect(scale).toBeGreaterThan(0.5);
    expect(worst).toBeLessThan(2e-4 * scale);

    const d = resolveSpec(spec).d as number;
    const norms = rotatedNorms(r.spec);
    expect(norms.length).toBe(2 * (resolveSpec(spec).layers as number));
    expect(r.norms.map((n) => n.rotation)).toEqual(norms.map((n) => n.rotation));
    for (const [k, n] of norms.entries()) {
      const rot = r.values.get(n.rotation)!;
      // R^T R = I
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) {
          let s = 0;
          for (let a = 0; a < d; a++) s += rot[a * d + i]! * rot[a * d + j]!;
          expect(Math.abs(s - (i === j ? 1 : 0))).toBeLessThan(1e-5);
        }
      }
      // the rotated basis stack: diagonal Gram (relative to its largest entry), the diagonal non-increasing and
      // equal to the squared singular values reported, with the same trace as the unrotated stack's
      const g = gram(n.basis.map((l) => r.values.get(l.name)!), d);
      const g0 = gram(n.basis.map((l) => values.get(l.name)!), d);
      const top = g[0]!;
      let trace = 0;
      let trace0 = 0;
      for (let i = 0; i < d; i++) {
        trace += g[i * d + i]!;
        trace0 += g0[i * d + i]!;
        if (i > 0) expect(g[i * d + i]!).toBeLessThanOrEqual(g[(i - 1) * d + i - 1]! * (1 + 1e-5) + 1e-9);
        expect(Math.abs(Math.sqrt(g[i * d + i]!) - r.norms[k]!.singular[i]!)).toBeLessThan(1e-4 * Math.sqrt(top));
        for (let j = 0; j < d; j++) if (i !== j) expect(Math.abs(g[i * d + j]!)).toBeLessThan(1e-5 * top);
      }
      expect(Math.abs(trace - trace0)).toBeLessThan(1e-5 * trace0);
      // every reader is rotated (a router too, to keep the function, though it is not in the basis stack)
      for (const l of n.readers) expect(r.values.get(l.name)).not.toBe(values.get(l.name));
    }
  });

  it('rotating a rotated model again changes nothing but rounding', () => {
    const once = rotateNorms(spec, values);
    const twice = rotateNorms(once.spec, once.values);
    const a = logits(once.spec, once.values, IDS);
    const b = logits(twice.spec, twice.values, IDS);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThan(1e-3);
    // the second basis is the first up to column signs: the composed rotation's columns match the first's up to sign
    const d = resolveSpec(spec).d as number;
    for (const n of rotatedNorms(once.spec)) {
      const r1 = once.values.get(n.rotation)!;
      const r2 = twice.values.get(n.rotation)!;
      const s1 = once.norms.find((x) => x.rotation === n.rotation)!.singular;
      for (let j = 0; j < d; j++) {
        // columns of a repeated singular value may mix; compare only well-separated ones
        const gap = Math.min(j > 0 ? s1[j - 1]! - s1[j]! : Infinity, j < d - 1 ? s1[j]! - s1[j + 1]! : Infinity);
        if (gap < 1e-3 * s1[0]!) continue;
        let dot = 0;
        for (let i = 0; i < d; i++) dot += r1[i * d + j]! * r2[i * d + j]!;
        expect(Math.abs(Math.abs(dot) - 1)).toBeLessThan(1e-3);
      }
    }
  });
});
