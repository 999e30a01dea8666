import { count, equals, isKept, sparsity } from '@sparse/masks';
import { ArgumentError, DTypeError, Random, tensor } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { columnNormsOf, correlatedInputs, errorOf, hessianOf, isNM, normalMatrix } from './__fixtures__/layers.js';
import { Sparsifier } from './sparsifier.js';

function model(seed: number) {
  const rng = new Random(seed);
  return {
    layers: { q: { weight: normalMatrix(rng, 8, 16) }, fc1: { weight: normalMatrix(rng, 12, 16) }, fc2: { weight: normalMatrix(rng, 4, 12) } },
    x16: correlatedInputs(rng, 64, 16),
    x12: correlatedInputs(rng, 64, 12),
  };
}

describe('Sparsifier', () => {
  it('prepares groups from defaults plus per-layer overrides', () => {
    const { layers } = model(1);
    const sp = new Sparsifier().prepare(layers, {
      defaults: { method: 'sparsegpt', config: { sparsity: 0.5, blocksize: 8 } },
      layers: { fc1: { config: { n: 2, m: 4 } }, fc2: { method: 'magnitude', config: { granularity: 'row' } } },
    });
    expect(sp.groupInfo).toEqual([
      { name: 'q', method: 'sparsegpt', config: { sparsity: 0.5, blocksize: 8 }, useCurrentMask: false, steps: 0 },
      { name: 'fc1', method: 'sparsegpt', config: { blocksize: 8, n: 2, m: 4 }, useCurrentMask: false, steps: 0 },
      { name: 'fc2', method: 'magnitude', config: { sparsity: 0.5, granularity: 'row' }, useCurrentMask: false, steps: 0 },
    ]);
    expect(sparsity(sp.mask('q'))).toBe(0);
  });

  it('validates every layer config at prepare time, naming the layer', () => {
    const { layers } = model(2);
    const sp = new Sparsifier();
    expect(() => sp.prepare(layers, { defaults: { method: 'wanda', config: { sparsity: 0.5 } }, layers: { fc2: { config: { n: 4, m: 4 } } } })).toThrow(/wanda: layer 'fc2'.*N < M/);
    expect(() => sp.prepare(layers, { defaults: { method: 'wnda' } })).toThrow(/did you mean 'wanda'/);
    expect(() => sp.prepare(layers, { defaults: { method: 'wanda' }, layers: { fc3: {} } })).toThrow(/fc3/);
    expect(() => sp.prepare({ a: { weight: tensor(new Float64Array(4), [2, 2]) } }, { defaults: { method: 'magnitude' } })).toThrow(DTypeError);
    expect(() => sp.step()).toThrow(/prepare/);
  });

  it('steps with calibration stats, keeps masks apart from weights, and squashes them in', () => {
    const { layers, x16, x12 } = model(3);
    const dense = Object.fromEntries(Object.entries(layers).map(([k, v]) => [k, Float32Array.from(v.weight.data)]));
    const sp = new Sparsifier().prepare(layers, {
      defaults: { method: 'wanda', config: { sparsity: 0.5 } },
      layers: { fc1: { method: 'sparsegpt', config: { n: 2, m: 4 } } },
    });
    const stats = {
      q: { columnNorms: columnNormsOf(x16) },
      fc1: { hessian: hessianOf(x16) },
      fc2: { columnNorms: columnNormsOf(x12) },
    };
    const report = sp.step({ stats });
    expect(report.q!.sparsity).toBe(0.5);
    expect(report.fc1!.error!.total).toBeGreaterThan(0);
    expect(isNM(sp.mask('fc1'), 2, 4)).toBe(true);
    // Wanda leaves weights alone: the mask is separate until squash.
    expect(Array.from(layers.q.weight.data)).toEqual(Array.from(dense.q!));
    // SparseGPT writes its reconstruction into the kept weights; pruned entries keep their values until squash.
    const m = sp.mask('fc1');
    let changedKept = 0;
    layers.fc1.weight.data.forEach((v, k) => {
      if (isKept(m, k)) changedKept += v !== dense.fc1![k] ? 1 : 0;
      else expect(v).toBe(dense.fc1![k]);
    });
    expect(changedKept).toBeGreaterThan(0);
    const maskedFc1 = sp.maskedWeight('fc1');
    // The reported error is measured with the dampened Hessian, so it bounds the true one from above.
    const measured = errorOf(tensor(dense.fc1!, [12, 16]), maskedFc1, x16);
    const reported = Math.sqrt(report.fc1!.error!.total * 64);
    expect(measured).toBeLessThanOrEqual(reported);
    expect(measured).toBeGreaterThan(0.9 * reported);
    const masks = sp.squash();
    for (const [name, mask] of Object.entries(masks)) {
      layers[name as keyof typeof layers].weight.data.forEach((v, k) => isKept(mask, k) || expect(v).toBe(0));
    }
    expect(sp.layerNames).toEqual([]);
  });

  it('steps a subset of layers (one block at a time)', () => {
    const { layers } = model(4);
    const sp = new Sparsifier().prepare(layers, { defaults: { method: 'magnitude', config: { sparsity: 0.75 } } });
    sp.step({ layers: ['fc2'] });
    expect(sparsity(sp.mask('fc2'))).toBe(0.75);
    expect(sparsity(sp.mask('q'))).toBe(0);
    expect(() => sp.step({ layers: ['nope'] })).toThrow(ArgumentError);
  });

  it('with useCurrentMask, a later SparseGPT step keeps the mask and only reconstructs', () => {
    const { layers, x16 } = model(5);
    const one = { fc1: layers.fc1 };
    const sp = new Sparsifier().prepare(one, { defaults: { method: 'sparsegpt', config: { sparsity: 0.6 }, useCurrentMask: true } });
    sp.step({ stats: { fc1: { hessian: hessianOf(x16) } } });
    const first = sp.mask('fc1');
    sp.step({ stats: { fc1: { hessian: hessianOf(x16) } } });
    expect(equals(sp.mask('fc1'), first)).toBe(true);
  });

  it('saves and restores its state with a checkpoint', () => {
    const { layers } = model(6);
    const config = { defaults: { method: 'random', config: { sparsity: 0.3, seed: 4 } } };
    const sp = new Sparsifier().prepare(layers, config);
    sp.step();
    const state = sp.state();
    const json = JSON.parse(JSON.stringify({ ...state, masks: {} }));
    expect(json.groups[0]).toEqual({ name: 'q', method: 'random', config: { sparsity: 0.3, seed: 4 }, useCurrentMask: false, steps: 1 });
    const restored = new Sparsifier().prepare(model(6).layers, config).loadState({ ...json, masks: state.masks });
    for (const name of sp.layerNames) expect(equals(restored.mask(name), sp.mask(name))).toBe(true);
    expect(restored.groupInfo.map((g) => g.steps)).toEqual([1, 1, 1]);
    expect(count(restored.mask('fc2'))).toBe(count(sp.mask('fc2')));
    expect(() => new Sparsifier().prepare({ q: layers.q }, config).loadState(state)).toThrow(/no prepared layer 'fc1'/);
    expect(() => new Sparsifier().prepare(layers, config).loadState({ ...state, masks: { ...state.masks, q: state.masks.fc2! } })).toThrow(/layer 'q' mask/);
  });
});
