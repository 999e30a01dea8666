// The variants with a lifecycle in training declare it in their tfjs form (`training` hooks) and their
// data needs in the core variant (`supportScores`, `initStatistics`): checked here without a trainer.
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { Random, tensor, type Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromPEFTFiles, toPEFTFiles } from './peft.js';
import { attachAdapters, getTfForm, listTfForms, mosaDraws, registerTfForm, type AdapterModel } from './tfjs.js';
import { dynamicRankConfigSchema } from './variants/dynamic-rank/config.js';
import { activeRank, rankBudgetAt } from './variants/dynamic-rank/variant.js';
import { pstSparsityAt } from './variants/pst/variant.js';
import { getVariant, variants } from './variants/registry.js';
import type { IndexedAdapterState } from './variants/helpers/sparse.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const SHAPES = { 'a.fc': [8, 16], 'b.fc': [8, 16] } as const;

function model(variant: string, config: Record<string, unknown>, seed = 1): AdapterModel {
  const rng = new Random(seed);
  const weights = Object.fromEntries(Object.entries(SHAPES).map(([n, [o, i]]) => [n, tf.variable(tf.tensor(Float32Array.from({ length: o * i }, () => rng.normal()), [o, i]), false)]));
  return attachAdapters(weights, { targets: Object.keys(SHAPES), variant, config, seed });
}

function hooksOf(m: AdapterModel, config: unknown, steps: number, scores?: (draw: string) => (layer: string) => Tensor | undefined) {
  const variant = m.variantOf(m.activeAdapter!);
  return getTfForm(variant)!.training!({ model: m, adapter: m.activeAdapter!, config: getVariant(variant).parseConfig(config), steps, ...(scores ? { scores } : {}) });
}

describe('dynamic-rank: rankBudgetAt and its hooks', () => {
  it('rankBudgetAt follows the cubic schedule: r per layer before start, target at end, only every `every` steps and at end', () => {
    const c = dynamicRankConfigSchema.parse({ r: 8, rankBudget: { target: 2, start: 0.25, end: 0.75, every: 5 } });
    const [steps, layers] = [100, 3];
    const [s0, s1] = [25, 75];
    for (let step = 1; step <= steps; step++) {
      const b = rankBudgetAt(c, step, steps, layers);
      const due = step > s0 && step <= s1 && ((step - s0) % 5 === 0 || step === s1);
      expect(b !== undefined, `step ${step}`).toBe(due);
      if (b !== undefined) expect(b).toBe(Math.round(6 + (24 - 6) * (1 - (step - s0) / (s1 - s0)) ** 3));
    }
    expect(rankBudgetAt(c, s1, steps, layers)).toBe(2 * layers);
    // the default: target ⌈r/2⌉ between 20% and 70%
    const d = dynamicRankConfigSchema.parse({ r: 5 });
    expect(rankBudgetAt(d, 70, 100, 2)).toBe(6);
    expect(rankBudgetAt(d, 20, 100, 2)).toBeUndefined();
  });

  it('the hooks prune to the budget over the run and report the ranks', () => {
    const cfg = { r: 4, rankBudget: { target: 1, start: 0, end: 0.5, every: 2 } };
    const m = model('dynamic-rank', cfg);
    for (const v of m.trainableVariables()) v.assign(tf.randomNormal(v.shape, 0, 0.1, 'float32', 3));
    const h = hooksOf(m, cfg, 12);
    for (let step = 1; step <= 12; step++) h.beforeStep!(step);
    const ranks = Object.values(m.adapterStates()).map((s) => activeRank(s as never));
    expect(ranks.reduce((a, b) => a + b, 0)).toBe(2);
    const done = h.finish!();
    expect(done.event).toEqual({ event: 'ranks', ranks: { 'a.fc': ranks[0], 'b.fc': ranks[1] } });
    expect(done.log).toMatch(/^rank after pruning 2 components over 2 layers/);
    m.dispose();
  });
});

describe('pst: the mask level follows pstSparsityAt', () => {
  it('before each step every layer holds the scheduled level', () => {
    const cfg = { r: 2, scoreRank: 2, sparsity: 0.6, initialSparsity: 0.1, scheduleEnd: 0.5 };
    const m = model('pst', cfg);
    const h = hooksOf(m, cfg, 10);
    for (let step = 1; step <= 10; step++) {
      h.beforeStep!(step);
      for (const n of Object.keys(SHAPES)) expect(m.layerVariables(n).pst_sparsity!.dataSync()[0]).toBeCloseTo(pstSparsityAt(cfg, step, 10), 6);
    }
    m.dispose();
  });
});

describe('mosa: the draw counters survive a resume', () => {
  it('state() holds the draws; load() puts them into a fresh model', () => {
    const cfg = { r: 4, modules: 2 };
    const a = model('mosa', cfg);
    a.training = true;
    for (let k = 0; k < 3; k++) for (const n of Object.keys(SHAPES)) a.effectiveWeight(n).dispose();
    const saved = JSON.parse(JSON.stringify(hooksOf(a, cfg, 5).state!()));
    expect(saved).toEqual({ draws: { 'a.fc': 3, 'b.fc': 3 } });
    const b = model('mosa', cfg);
    hooksOf(b, cfg, 5).load!(saved);
    expect(mosaDraws(b)).toEqual(mosaDraws(a));
    a.dispose();
    b.dispose();
  });
});

describe('losia: re-localization every k steps', () => {
  it('re-localizes before steps k+1, 2k+1, ..., returns the new cores to reset, and its state moves the subnets to a fresh model', () => {
    const cfg = { rows: 0.25, cols: 0.25, every: 2 };
    const m = model('losia', cfg);
    const rng = new Random(9);
    for (const v of m.trainableVariables()) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => rng.normal()), v.shape));
    const draws: string[] = [];
    // scores that favour the last rows and columns, so the subnet moves
    const scores = (draw: string) => {
      draws.push(draw);
      return () => tensor(Float32Array.from({ length: 8 * 16 }, (_, q) => Math.floor(q / 16) * 100 + (q % 16)), [8, 16]);
    };
    const h = hooksOf(m, cfg, 6, scores);
    expect(h.beforeStep!(1)).toBeUndefined();
    expect(h.beforeStep!(2)).toBeUndefined();
    const out = h.beforeStep!(3)!;
    expect(draws).toEqual(['relocalize-3']);
    expect(out.event).toEqual({ event: 'relocalize', step: 3 });
    expect(out.reset).toEqual(Object.keys(SHAPES).map((n) => m.layerVariables(n).losia_core));
    for (const s of Object.values(m.adapterStates())) {
      const { rows, cols } = (s as IndexedAdapterState).indices;
      expect(Array.from(rows!)).toEqual([6, 7]);
      expect(Array.from(cols!)).toEqual([12, 13, 14, 15]);
      expect(s.params.losia_core!.data.every((x) => x === 0)).toBe(true);
    }
    const saved = JSON.parse(JSON.stringify(h.state!()));
    expect(saved.count).toBe(1);
    expect(h.finish!().note).toMatch(/1 earlier cores were merged/);
    const fresh = model('losia', cfg);
    hooksOf(fresh, cfg, 6, scores).load!(saved);
    expect(Object.values(fresh.adapterStates()).map((s) => Array.from((s as IndexedAdapterState).indices.rows!))).toEqual([[6, 7], [6, 7]]);
    // without data scores there is nothing to re-localize from
    expect(() => hooksOf(fresh, cfg, 6)).toThrow(/every needs data scores/);
    m.dispose();
    fresh.dispose();
  });
});

describe('declarations', () => {
  it('a variant declares scored supports exactly when initWithScores takes scores, and its criteria are known ones', () => {
    for (const v of variants.entries()) {
      const scored = v.supportScores !== undefined;
      expect(typeof (v as { initWithScores?: unknown }).initWithScores === 'function' && scored, v.name).toBe(scored);
      if (scored) {
        expect(v.supportScores!.criteria.length, v.name).toBeGreaterThan(0);
        for (const c of v.supportScores!.criteria) expect(['magnitude', 'fisher', 'gradient', 'sensitivity'], v.name).toContain(c);
      }
    }
    expect(getVariant('losia').supportScores!.needsData!({ every: 3 })).toMatch(/re-localization needs data scores/);
    expect(getVariant('losia').supportScores!.needsData!({})).toBeUndefined();
  });

  it('initStatistics names what a config still lacks, and init refuses it without', () => {
    const base = tensor(Float32Array.from({ length: 6 * 4 }, (_, q) => Math.sin(q + 1)), [6, 4]);
    const cov = tensor(Float32Array.from({ length: 16 }, (_, q) => (q % 5 === 0 ? 1 : 0)), [4, 4]);
    const grad = tensor(Float32Array.from({ length: 24 }, (_, q) => Math.cos(q)), [6, 4]);
    const cases: [string, Record<string, unknown>, string[], Record<string, unknown>][] = [
      ['corda', { r: 2 }, ['covariance'], { covariance: cov }],
      ['null-lora', { r: 2, space: 'inputs' }, ['covariance'], { covariance: cov }],
      ['null-lora', { r: 2 }, [], {}],
      ['lora-sb', { r: 2 }, ['gradient'], { gradient: grad }],
      ['lora', { r: 2 }, [], {}],
    ];
    for (const [name, cfg, wants, given] of cases) {
      const v = getVariant(name);
      expect(v.initStatistics?.(v.parseConfig(cfg)) ?? [], name).toEqual(wants);
      if (wants.length > 0) expect(() => v.init(base, cfg, new Random(1)), name).toThrow();
      const full = { ...cfg, ...given };
      expect(v.initStatistics?.(v.parseConfig(full)) ?? [], name).toEqual([]);
      expect(() => v.init(base, full, new Random(1)), name).not.toThrow();
    }
  });

  it('the training-time config fields save and load in the PEFT layout', () => {
    for (const [variant, config] of [['dynamic-rank', { r: 4, rankBudget: { target: 2, start: 0.1, end: 0.9, every: 3 } }], ['losia', { every: 4 }]] as const) {
      const m = model(variant, config);
      const states = m.adapterStates();
      const files = toPEFTFiles(states);
      const back = fromPEFTFiles(files.config, { tensorNames: Object.keys(files.tensors), tensor: (n) => files.tensors[n]! });
      expect(back.modules['a.fc']!.config, variant).toEqual(states['a.fc']!.config);
      m.dispose();
    }
  });

  it('registerTfForm refuses a training member that is not a function', () => {
    const before = listTfForms();
    expect(() => registerTfForm({ ...getTfForm('lora')!, variant: 'lora', training: 3 as never })).toThrow(/training must be a function/);
    expect(listTfForms()).toEqual(before);
  });
});
