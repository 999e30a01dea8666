// MeZO / Sparse MeZO over tf.Variables. Draws z in the same order as the core (variables in order, one
// normal per masked entry), so a tfjs step and a Float32Array step with the same seed agree. At any time
// one direction buffer of one variable exists; nothing of model size is stored between passes.
import { isKept } from '@sparse/masks';
import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { checkMeZOMasks, type MeZOMasks, type MeZOStepResult } from './mezo.js';

export type MeZOTfLoss = () => number | tf.Scalar | Promise<number | tf.Scalar>;

export interface MeZOTfStepOptions {
  seed: number;
  lr: number;
  eps?: number;
  masks?: MeZOMasks;
}

async function lossValue(loss: MeZOTfLoss): Promise<number> {
  const v = await loss();
  if (typeof v === 'number') return v;
  const [x] = await v.data();
  v.dispose();
  return x!;
}

function perturb(vars: readonly tf.Variable[], seed: number, scale: number, masks?: MeZOMasks): void {
  const rng = new Random(seed);
  vars.forEach((v, i) => {
    const m = masks?.[i] ?? null;
    const z = new Float32Array(v.size);
    for (let k = 0; k < z.length; k++) if (m === null || isKept(m, k)) z[k] = rng.normal();
    const next = tf.tidy(() => tf.add(v, tf.mul(tf.tensor(z, v.shape), scale)));
    v.assign(next);
    next.dispose();
  });
}

/** One (Sparse) MeZO step on float32 tf.Variables in place; `loss` runs the model with their current values. */
export async function mezoStepTf(vars: readonly tf.Variable[], loss: MeZOTfLoss, opts: MeZOTfStepOptions): Promise<MeZOStepResult> {
  const where = 'mezoStepTf';
  const eps = opts.eps ?? 1e-3;
  if (!Number.isSafeInteger(opts.seed)) throw new ArgumentError(`${where}: seed must be a safe integer, got ${opts.seed}`);
  if (!Number.isFinite(opts.lr) || opts.lr < 0) throw new ArgumentError(`${where}: lr must be finite and >= 0, got ${opts.lr}`);
  if (!(eps > 0) || !Number.isFinite(eps)) throw new ArgumentError(`${where}: eps must be finite and > 0, got ${eps}`);
  vars.forEach((v, i) => {
    if (v.dtype !== 'float32') throw new ArgumentError(`${where}: vars[${i}] ('${v.name}') must be float32, got ${v.dtype}`);
  });
  if (opts.masks !== undefined) checkMeZOMasks(opts.masks, vars.map((v) => v.size), where, 'variables');
  const { seed, masks } = opts;
  const evalAt = async (offset: number): Promise<number> => {
    perturb(vars, seed, offset, masks);
    try {
      return await lossValue(loss);
    } finally {
      perturb(vars, seed, -offset, masks);
    }
  };
  const lossPlus = await evalAt(eps);
  const lossMinus = await evalAt(-eps);
  if (!Number.isFinite(lossPlus) || !Number.isFinite(lossMinus)) throw new ArgumentError(`${where}: the loss must be finite, got L+ = ${lossPlus}, L- = ${lossMinus}`);
  const projectedGrad = (lossPlus - lossMinus) / (2 * eps);
  if (opts.lr !== 0 && projectedGrad !== 0) perturb(vars, seed, -opts.lr * projectedGrad, masks);
  return { lossPlus, lossMinus, projectedGrad, seed };
}
