// The claim of the SparseGPT and Wanda papers at layer level, measured: on a fixed random layer with
// correlated calibration inputs, the reconstruction error is ordered SparseGPT <= Wanda <= magnitude, at 50%
// unstructured and at 2:4. The errors are printed so the margins can be read in the test log.

import { Random } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { correlatedInputs, errorOf, isNM, normalMatrix } from './__fixtures__/layers.js';
import { ColumnNormAccumulator, HessianAccumulator } from './calibration/index.js';
import { magnitudePrune } from './methods/magnitude/magnitude.js';
import { sparseGPTPrune } from './methods/sparsegpt/sparsegpt.js';
import { wandaPrune } from './methods/wanda/wanda.js';
import { dsnotPrune } from './methods/dsnot/dsnot.js';
import { reconstructionError } from './reconstruction.js';

describe('layer reconstruction error ordering (SparseGPT <= Wanda <= magnitude)', () => {
  const rng = new Random(2024);
  const out = 48;
  const features = 64;
  const w = normalMatrix(rng, out, features);
  const x = correlatedInputs(rng, 512, features, { spread: 1, mean: 0.5 });
  // Calibration streamed in four batches, as a model would feed it.
  const cols = new ColumnNormAccumulator(features, { name: 'fc' });
  const hess = new HessianAccumulator(features, { name: 'fc' });
  for (let b = 0; b < 4; b++) {
    const batch = { ...x, data: x.data.subarray(b * 128 * features, (b + 1) * 128 * features), shape: [128, features] };
    cols.add(batch);
    hess.add(batch);
  }
  const stats = { ...cols.stats(), ...hess.stats() };

  for (const [label, config] of [
    ['50% unstructured', { sparsity: 0.5 }],
    ['2:4', { n: 2, m: 4 }],
  ] as const) {
    it(`holds at ${label}`, () => {
      const mag = magnitudePrune({ name: 'fc', weight: w, config });
      const wanda = wandaPrune({ name: 'fc', weight: w, stats, config });
      const sgpt = sparseGPTPrune({ name: 'fc', weight: w, stats, config });
      const dsnot = dsnotPrune({ name: 'fc', weight: w, stats, config: { ...config, initial: 'wanda' } });
      const e = {
        magnitude: errorOf(w, mag.weight, x),
        wanda: errorOf(w, wanda.weight, x),
        dsnot: errorOf(w, dsnot.weight, x),
        sparsegpt: errorOf(w, sgpt.weight, x),
      };
      const dense = errorOf(w, { ...w, data: new Float32Array(w.data.length) }, x);
      console.log(
        `[${label}] ||WX^T - W'X^T||_F relative to ||WX^T||_F: magnitude ${(e.magnitude / dense).toFixed(4)}, wanda ${(e.wanda / dense).toFixed(4)}, ` +
          `dsnot(wanda) ${(e.dsnot / dense).toFixed(4)}, sparsegpt ${(e.sparsegpt / dense).toFixed(4)}`,
      );
      expect(e.sparsegpt).toBeLessThanOrEqual(e.wanda);
      expect(e.wanda).toBeLessThanOrEqual(e.magnitude);
      expect(e.dsnot).toBeLessThanOrEqual(e.wanda * (1 + 1e-6));
      // The kernel-based measure agrees with the plain float64 one.
      expect(reconstructionError(w, sgpt.weight, x)).toBeCloseTo(e.sparsegpt, 2);
      if ('n' in config) for (const r of [mag, wanda, sgpt, dsnot]) expect(isNM(r.mask, 2, 4)).toBe(true);
    });
  }
});
