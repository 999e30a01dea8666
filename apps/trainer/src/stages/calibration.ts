// Calibration data for the methods that read it: seeded windows of the stage's token stream, and a
// forward pass that feeds chosen layers' inputs to accumulators (column norms, Hessians).

import * as tf from '@tensorflow/tfjs-core';
import type { ColumnNormAccumulator, HessianAccumulator } from '@sparse/pruners';
import { Random, tensor } from '@sparse/tensor';
import type { LinearInfo } from '../model/types.js';
import type { RunContext } from '../run/context.js';

export interface Accumulators {
  columns?: ColumnNormAccumulator;
  hessian?: HessianAccumulator;
}

/**
 * Calibration batches: `windows` random windows (seeded) of the stage's token stream (`data`: the
 * pretraining data or the embedded shifted task), `batch` at a time.
 */
export function calibrationBatches(ctx: RunContext, index: number, data: 'train' | 'shifted' = 'train'): { ids: Int32Array; b: number; len: number }[] {
  const { windows, batch } = ctx.calibration ?? { windows: 64, batch: 16 };
  const tokens = (data === 'shifted' ? ctx.data.shifted() : ctx.data.main).train;
  const len = Math.min(ctx.model.spec.ctx, tokens.length - 1);
  const rng = new Random(ctx.recipe.seed).fork(`stage-${index}`).fork('calibration');
  const out: { ids: Int32Array; b: number; len: number }[] = [];
  for (let i = 0; i < windows; i += batch) {
    const b = Math.min(batch, windows - i);
    const ids = new Int32Array(b * len);
    for (let r = 0; r < b; r++) {
      const s = rng.int(0, tokens.length - len);
      ids.set(tokens.subarray(s, s + len), r * len);
    }
    out.push({ ids, b, len });
  }
  return out;
}

/** Runs the calibration batches and feeds each wanted layer's inputs to its accumulators. */
export function capture(ctx: RunContext, batches: ReturnType<typeof calibrationBatches>, wanted: Map<string, Accumulators>): void {
  const hooks = {
    ...ctx.hooks(),
    linearInput: (info: LinearInfo, x: tf.Tensor2D) => {
      const acc = wanted.get(info.name);
      if (!acc) return;
      const core = tensor(Float32Array.from(x.dataSync() as Float32Array), [...x.shape]);
      acc.columns?.add(core);
      acc.hessian?.add(core);
    },
  };
  for (const { ids, b, len } of batches) {
    tf.tidy(() => {
      ctx.model.logits2d(tf.tensor2d(ids, [b, len], 'int32'), hooks);
    });
  }
}

