// RoseLoRA's sensitivity selection: the EMA of |θ · ∂L/∂θ|, the cubic schedule, the supports in the
// state (train == merge) and an exact resume through the hooks' state.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random, tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { attachAdapters, type AdapterModel } from '../../tfjs.js';
import type { AdapterState } from '../types.js';
import type { IndexedAdapterState } from '../helpers/sparse.js';
import { describeVariantContract, randn } from '../helpers/sparse-testing.js';
import { roseloraConfigSchema } from './config.js';
import { roseloraDensityAt, roseloraVariant } from './variant.js';
import { roseloraTraining } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** ΔW from the stored supports (kept flat positions of A and B), by loops. */
function refDelta(s: AdapterState): Float64Array {
  const [out, inp] = s.shape;
  const c = s.config as { r: number; alpha: number };
  const idx = (s as IndexedAdapterState).indices;
  const a = new Float64Array(c.r * inp);
  const b = new Float64Array(out * c.r);
  for (const k of idx.roselora_A!) a[k] = s.params.lora_A!.data[k]!;
  for (const k of idx.roselora_B!) b[k] = s.params.lora_B!.data[k]!;
  const d = new Float64Array(out * inp);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) for (let t = 0; t < c.r; t++) d[i * inp + j]! += (c.alpha / c.r) * b[i * c.r + t]! * a[t * inp + j]!;
  return d;
}

describeVariantContract({
  name: 'roselora',
  config: { r: 2, alpha: 4, densityA: 0.5, densityB: 0.5 },
  closedForm: ([out, inp], c) => (c.r as number) * (out + inp),
  referenceDelta: (s) => refDelta(s),
  densifyChangesMask: true,
  badConfigs: [[{ selection: 'gradient' }, /selection/], [{ beta: 1 }, /beta/], [{ scheduleStart: 0.8, scheduleEnd: 0.5 }, /scheduleEnd/]],
});

/** Top-k positions of v (ties: lower index), by sorting. */
function topIdx(v: number[], k: number): number[] {
  return v.map((x, i) => [x, i] as const).sort((p, q) => q[0] - p[0] || p[1] - q[1]).slice(0, k).map((e) => e[1]).sort((p, q) => p - q);
}

const [OUT, IN, R] = [6, 10, 2];
function tiny(config: Record<string, unknown>): { m: AdapterModel; target: tf.Tensor } {
  const rng = new Random(4);
  const m = attachAdapters({ fc: tf.variable(tf.tensor(randn(rng, [OUT, IN]).data, [OUT, IN]), false) }, { targets: 'fc', variant: 'roselora', config });
  for (const v of m.trainableVariables()) v.assign(tf.tensor(randn(rng, v.shape as [number, number]).data, v.shape));
  return { m, target: tf.tensor(randn(rng, [OUT, IN]).data, [OUT, IN]) };
}

/** One training step driven like the trainer: beforeStep, gradients shown to the hooks, a plain SGD update. */
function step(m: AdapterModel, target: tf.Tensor, hooks: ReturnType<typeof roseloraTraining>, t: number, seen?: (v: tf.Variable, g: Float32Array) => void): void {
  hooks.beforeStep!(t);
  const vars = m.trainableVariables();
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(tf.sub(m.effectiveWeight('fc'), target))) as tf.Scalar, vars);
  for (const v of vars) {
    seen?.(v, grads[v.name]!.dataSync() as Float32Array);
    hooks.gradient!(v, grads[v.name]!);
  }
  for (const v of vars) v.assign(tf.sub(v, tf.mul(0.01, grads[v.name]!)));
  tf.dispose(grads);
}

describe('roselora: sensitivity selection', () => {
  it('the schedule is cubic from dense to the targets, due every scheduleEvery steps and at the end', () => {
    const c = roseloraConfigSchema.parse({ densityA: 0.2, densityB: 0.5, scheduleStart: 0.1, scheduleEnd: 0.7, scheduleEvery: 4 });
    const steps = 100;
    for (let t = 1; t <= steps; t++) {
      const d = roseloraDensityAt(c, t, steps);
      const due = t > 10 && t <= 70 && ((t - 10) % 4 === 0 || t === 70);
      expect(d !== undefined, `step ${t}`).toBe(due);
      if (d === undefined) continue;
      const left = (1 - (t - 10) / 60) ** 3;
      expect(d.densityA).toBeCloseTo(0.2 + 0.8 * left, 12);
      expect(d.densityB).toBeCloseTo(0.5 + 0.5 * left, 12);
    }
    expect(roseloraDensityAt(c, 70, steps)).toEqual({ densityA: 0.2, densityB: 0.5 });
    // defaults: β 0.85, from 10% to 70% of the run, every step
    expect(roseloraConfigSchema.parse({})).toMatchObject({ selection: 'sensitivity', beta: 0.85, scheduleStart: 0.1, scheduleEnd: 0.7, scheduleEvery: 1 });
  });

  it('init is dense; the hooks keep the EMA of |θ · g| and select its per-row / per-column top-k at the scheduled counts; train == merge', () => {
    const cfg = { r: R, alpha: 4, densityA: 0.3, densityB: 0.5, beta: 0.8, scheduleStart: 0, scheduleEnd: 0.5, scheduleEvery: 2 };
    const c = roseloraConfigSchema.parse(cfg);
    const { m, target } = tiny(cfg);
    const s0 = m.adapterStates()['fc'] as IndexedAdapterState;
    expect(s0.indices.roselora_A!.length).toBe(R * IN);
    expect(s0.indices.roselora_B!.length).toBe(OUT * R);
    const steps = 8;
    const hooks = roseloraTraining({ model: m, adapter: m.activeAdapter!, config: c, steps });
    const [A, B] = [m.layerVariables('fc').lora_A!, m.layerVariables('fc').lora_B!];
    const ema = { A: new Float64Array(R * IN), B: new Float64Array(OUT * R) };
    for (let t = 1; t <= steps; t++) {
      step(m, target, hooks, t, (v, g) => {
        const e = v === A ? ema.A : ema.B;
        const th = v.dataSync();
        for (let k = 0; k < e.length; k++) e[k] = Math.fround(0.8 * e[k]! + (1 - 0.8) * Math.abs(th[k]! * g[k]!));
      });
      const d = roseloraDensityAt(c, t + 1, steps);
      if (t === steps || d === undefined) continue;
      // the support the next step will use: brute-force top-k of the EMA after step t
      hooks.beforeStep!(t + 1); // idempotent: the same EMA gives the same selection
      const s = m.adapterStates()['fc'] as IndexedAdapterState;
      const [kA, kB] = [Math.max(1, Math.round(d.densityA * IN)), Math.max(1, Math.round(d.densityB * OUT))];
      const wantA: number[] = [];
      for (let r = 0; r < R; r++) wantA.push(...topIdx(Array.from({ length: IN }, (_, j) => ema.A[r * IN + j]!), kA).map((j) => r * IN + j));
      const wantB: number[] = [];
      for (let r = 0; r < R; r++) wantB.push(...topIdx(Array.from({ length: OUT }, (_, i) => ema.B[i * R + r]!), kB).map((i) => i * R + r));
      expect(Array.from(s.indices.roselora_A!)).toEqual(wantA.sort((p, q) => p - q));
      expect(Array.from(s.indices.roselora_B!)).toEqual(wantB.sort((p, q) => p - q));
      // the form trains what the merge writes
      const merged = roseloraVariant.merge(tensor(Float32Array.from(m.weights['fc']!.dataSync()), [OUT, IN]), s as never);
      const eff = m.effectiveWeight('fc').dataSync();
      for (let k = 0; k < OUT * IN; k++) expect(eff[k]).toBeCloseTo(merged.data[k]!, 5);
    }
    const end = m.adapterStates()['fc'] as IndexedAdapterState;
    expect(end.indices.roselora_A!.length).toBe(R * 3);
    expect(end.indices.roselora_B!.length).toBe(R * 3);
    m.dispose();
  });

  it('the hooks state() resumes exactly: EMA and supports continue as in an uninterrupted run', () => {
    const cfg = { r: R, alpha: 4, densityA: 0.3, densityB: 0.5, scheduleStart: 0.2, scheduleEnd: 0.8 };
    const c = roseloraConfigSchema.parse(cfg);
    const steps = 10;
    const a = tiny(cfg);
    const ha = roseloraTraining({ model: a.m, adapter: a.m.activeAdapter!, config: c, steps });
    for (let t = 1; t <= 4; t++) step(a.m, a.target, ha, t);
    const saved = JSON.parse(JSON.stringify(ha.state!())) as unknown;
    const b = tiny(cfg);
    for (const [k, v] of b.m.trainableVariables().entries()) v.assign(a.m.trainableVariables()[k]!);
    const hb = roseloraTraining({ model: b.m, adapter: b.m.activeAdapter!, config: c, steps });
    hb.load!(saved);
    expect((b.m.adapterStates()['fc'] as IndexedAdapterState).indices).toEqual((a.m.adapterStates()['fc'] as IndexedAdapterState).indices);
    for (let t = 5; t <= steps; t++) {
      step(a.m, a.target, ha, t);
      step(b.m, b.target, hb, t);
    }
    expect(hb.state!()).toEqual(ha.state!());
    a.m.trainableVariables().forEach((v, k) => expect(Array.from(b.m.trainableVariables()[k]!.dataSync())).toEqual(Array.from(v.dataSync())));
    a.m.dispose();
    b.m.dispose();
  });
});
