import { Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { AdapterState } from '../types.js';
import { roseloraVariant } from './variant.js';
import { roseloraForm } from './tfjs.js';
import { describeVariantContract, expectClose, perturb, randn } from '../helpers/sparse-testing.js';

/** Indices of the k largest |v| (ties: lower index), by sorting. */
function topIdx(v: number[], k: number): Set<number> {
  return new Set(v.map((x, i) => [Math.abs(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((e) => e[1]));
}

/** A' and B' by sorting each row of A and column of B. */
function sparseFactors(s: AdapterState): { a: Float64Array; b: Float64Array } {
  const [out, inp] = s.shape;
  const c = s.config as { r: number; densityA: number; densityB: number };
  const kA = Math.max(1, Math.round(c.densityA * inp));
  const kB = Math.max(1, Math.round(c.densityB * out));
  const A = s.params.lora_A!.data;
  const B = s.params.lora_B!.data;
  const a = new Float64Array(c.r * inp);
  const b = new Float64Array(out * c.r);
  for (let t = 0; t < c.r; t++) {
    const rowA = Array.from({ length: inp }, (_, j) => A[t * inp + j]!);
    for (const j of topIdx(rowA, kA)) a[t * inp + j] = rowA[j]!;
    const colB = Array.from({ length: out }, (_, i) => B[i * c.r + t]!);
    for (const i of topIdx(colB, kB)) b[i * c.r + t] = colB[i]!;
  }
  return { a, b };
}

function refDelta(s: AdapterState): Float64Array {
  const [out, inp] = s.shape;
  const c = s.config as { r: number; alpha: number; rslora: boolean };
  const scale = c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
  const { a, b } = sparseFactors(s);
  const d = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) {
    let v = 0;
    for (let t = 0; t < c.r; t++) v += b[i * c.r + t]! * a[t * inp + j]!;
    d[i * inp + j] = scale * v;
  }
  return d;
}

describeVariantContract({
  name: 'roselora',
  config: { r: 2, alpha: 4, densityA: 0.5, densityB: 0.5, selection: 'magnitude' },
  closedForm: ([out, inp], c) => (c.r as number) * (out + inp),
  referenceDelta: (s) => refDelta(s),
  densifyChangesMask: true,
  badConfigs: [[{ densityA: 0 }, /densityA/], [{ densityB: 2 }, /densityB/], [{ r: 'x' }, /r/]],
});

describe('roselora', () => {
  it('ΔW has at most r · kA · kB nonzeros, inside the selected rows × columns of each component', () => {
    const rng = new Random(1);
    const base = randn(rng, [20, 30]);
    const s = perturb(roseloraVariant.init(base, { r: 3, densityA: 0.2, densityB: 0.25, selection: 'magnitude' }, rng), rng);
    const d = roseloraVariant.delta(s, base);
    const nnz = d.data.filter((v) => v !== 0).length;
    expect(nnz).toBeLessThanOrEqual(3 * 6 * 5);
    expect(nnz).toBeGreaterThan(5 * 6); // at least one component's block
    expect(() => roseloraVariant.initWithScores(base, {}, rng, base)).toThrow(/roselora\.initWithScores: roselora selects from its own values and takes no scores/);
    const { a, b } = sparseFactors(s);
    for (let t = 0; t < 3; t++) {
      expect(Array.from({ length: 30 }, (_, j) => a[t * 30 + j]).filter((v) => v !== 0).length).toBe(6);
      expect(Array.from({ length: 20 }, (_, i) => b[i * 3 + t]).filter((v) => v !== 0).length).toBe(5);
    }
  });

  it('the tfjs form trains straight through the selection: ∂A = s · B′ᵀ G and ∂B = s · G A′ᵀ over all entries', async () => {
    await tf.setBackend('cpu');
    const rng = new Random(2);
    const base = randn(rng, [6, 10]);
    const s = perturb(roseloraVariant.init(base, { r: 2, alpha: 2, densityA: 0.3, densityB: 0.5, selection: 'magnitude' }, rng), rng);
    const A = tf.variable(tf.tensor(s.params.lora_A!.data, [2, 10]));
    const B = tf.variable(tf.tensor(s.params.lora_B!.data, [6, 2]));
    const G = randn(rng, [6, 10]);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(roseloraForm.effectiveWeight({ base: tf.tensor(base.data, [6, 10]), vars: { lora_A: A, lora_B: B }, state: s, mask: tf.onesLike(A), training: true }), tf.tensor(G.data, [6, 10]))) as tf.Scalar,
      [A, B],
    );
    const { a, b } = sparseFactors(s);
    // value = Σ G ⊙ (W + B′A′), scaling 1
    let expected = 0;
    const d = refDelta(s);
    for (let k = 0; k < 60; k++) expected += G.data[k]! * (base.data[k]! + d[k]!);
    expect(value.dataSync()[0]).toBeCloseTo(expected, 3);
    const dA = new Float64Array(20);
    const dB = new Float64Array(12);
    for (let t = 0; t < 2; t++) for (let j = 0; j < 10; j++) for (let i = 0; i < 6; i++) dA[t * 10 + j] += b[i * 2 + t]! * G.data[i * 10 + j]!;
    for (let i = 0; i < 6; i++) for (let t = 0; t < 2; t++) for (let j = 0; j < 10; j++) dB[i * 2 + t] += G.data[i * 10 + j]! * a[t * 10 + j]!;
    expectClose(grads[A.name]!.dataSync(), dA, 1e-5);
    expectClose(grads[B.name]!.dataSync(), dB, 1e-5);
  });
});
