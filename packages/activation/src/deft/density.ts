// DEFT's density loss: a differentiable stand-in for the fraction of non-zero MLP activations, added to the
// task loss during fine-tuning so that fine-tuning lowers activation density. This file has the config,
// the plain-array value (the reference the tfjs version is tested against) and the exact density.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { z } from 'zod';

export const densityLossConfigSchema = z.strictObject({
  /**
   * The surrogate of "is this activation non-zero":
   * - 'tanh': tanh(|a| / temperature), near 1 for |a| ≫ temperature and 0 at 0; the loss is its mean over
   *   every entry, a smooth count of non-zeros per entry.
   * - 'l1-l2': per token, ‖a‖₁ / (√n ‖a‖₂), the Hoyer ratio: 1 for a row with all entries equal in size,
   *   1/√n for one non-zero, scale-free (no temperature); the loss is its mean over tokens.
   */
  surrogate: z.enum(['tanh', 'l1-l2']).default('tanh'),
  /** Scale of the 'tanh' surrogate: activations well above it count as fully dense. */
  temperature: z.number().gt(0).default(0.5),
});

export type DensityLossConfig = z.output<typeof densityLossConfigSchema>;
export type DensityLossConfigInput = z.input<typeof densityLossConfigSchema>;

/** One layer's activations: `tokens` rows of `features` values, row-major. */
export interface ActivationRows {
  data: ArrayLike<number>;
  tokens: number;
  features: number;
}

function checkRows(where: string, a: ActivationRows, i: number): void {
  if (!Number.isInteger(a.tokens) || a.tokens < 1 || !Number.isInteger(a.features) || a.features < 1) {
    throw new ArgumentError(`${where}: layer ${i} needs tokens >= 1 and features >= 1, got ${a.tokens} x ${a.features}`);
  }
  if (a.data.length !== a.tokens * a.features) throw new ShapeError(`${where}: layer ${i} has ${a.data.length} values, expected ${a.tokens} x ${a.features}`);
}

/** The density surrogate of one layer (see the config), in float64. */
export function layerDensitySurrogate(a: ActivationRows, config: DensityLossConfig): number {
  const { data, tokens, features } = a;
  if (config.surrogate === 'tanh') {
    let s = 0;
    for (let i = 0; i < data.length; i++) s += Math.tanh(Math.abs(data[i]!) / config.temperature);
    return s / data.length;
  }
  let total = 0;
  for (let t = 0; t < tokens; t++) {
    let l1 = 0;
    let l2 = 0;
    for (let j = 0; j < features; j++) {
      const v = data[t * features + j]!;
      l1 += Math.abs(v);
      l2 += v * v;
    }
    total += l1 / (Math.sqrt(features) * Math.sqrt(l2 + HOYER_EPS));
  }
  return total / tokens;
}

/** Added under the square root of the Hoyer ratio so an all-zero row gives 0 instead of 0/0. */
export const HOYER_EPS = 1e-12;

/** The density loss of several layers: the mean of the layers' surrogates (every layer weighs the same). */
export function densityLossValue(acts: readonly ActivationRows[], config: Partial<DensityLossConfig> = {}): number {
  const c = densityLossConfigSchema.parse(config);
  if (acts.length === 0) throw new ArgumentError('densityLoss: needs at least one layer of activations');
  let s = 0;
  acts.forEach((a, i) => {
    checkRows('densityLoss', a, i);
    s += layerDensitySurrogate(a, c);
  });
  return s / acts.length;
}

/** The exact activation density: non-zero entries over all entries, across the layers. */
export function exactDensity(acts: readonly ArrayLike<number>[]): number {
  let nz = 0;
  let n = 0;
  for (const a of acts) {
    for (let i = 0; i < a.length; i++) if (a[i] !== 0) nz++;
    n += a.length;
  }
  return n === 0 ? 0 : nz / n;
}
