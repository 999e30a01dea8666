// @sparse/nm/schemas: config schemas (zod, an optional peer) of the N:M training methods, for recipes
// and tools that validate configs before any work starts (the trainer's `nm`, `adams`, `bdwp` and
// `patch` methods, and the permutation search before N:M pruning).

import { z } from 'zod';

const nm = {
  n: z.int().min(1).default(2),
  m: z.int().min(2).default(4),
};
const nLessThanM = (c: { n: number; m: number }) => c.n < c.m;
const nLessThanMError = { message: 'N:M needs n < m', path: ['n'] };

/** N:M training through the mask with a straight-through estimator; the mask follows the weights every `every` steps. */
export const nmTrainingConfigSchema = z
  .strictObject({
    ...nm,
    /**
     * ste: straight-through; sr-ste: plus lambda (1-mask) W on pruned weights; progressive: decayed gradient
     * to pruned weights; mask-decay: MDGF, the pruned weights' forward factor decays from 1 to 0
     * (decayShape, decayRate); structure-decay: SDGF, the binary mask's pattern tightens to n:m over
     * equal frames of the stage (structureDecay).
     */
    estimator: z.enum(['ste', 'sr-ste', 'progressive', 'mask-decay', 'structure-decay']).default('sr-ste'),
    /** SR-STE's decay on pruned weights. */
    lambda: z.number().min(0).default(2e-4),
    /** Progressive: the factor on pruned weights' gradient goes from 1 to this over the stage (cosine). */
    finalDecay: z.number().min(0).max(1).default(0),
    every: z.int().min(1).default(1),
    /** mask-decay: beta_t = max(0, 1 - decayRate t) (linear) or exp(-decayRate t) (exponential), t the stage step from 0. */
    decayShape: z.enum(['linear', 'exponential']).default('exponential'),
    /** mask-decay: decay per step (the paper's decay coefficient). */
    decayRate: z.number().gt(0).default(0.01),
    /** structure-decay: stepwise (M-1):M, M/2:M, ..., n:m; geometric 8n:8m, 4n:4m, 2n:2m, n:m. */
    structureDecay: z.enum(['stepwise', 'geometric']).default('stepwise'),
  })
  .refine(nLessThanM, nLessThanMError);
export type NMTrainingConfig = z.output<typeof nmTrainingConfigSchema>;

/**
 * CAST (Huang et al. 2025): AdamS's decay of the pruned N:M entries during dense training, a learned
 * per-row weight scale, and self-distillation from the dense model the stage starts from; then the hard mask.
 */
export const adamsConfigSchema = z
  .strictObject({
    ...nm,
    /** L1 decay strength on pruned entries (normalized inside AdamS's second moment). */
    lambda: z.number().min(0).default(0.01),
    /** lambda ramps linearly from 0 over this many steps (0: constant from the first step). */
    rampSteps: z.int().min(0).default(0),
    /** Recompute the masks from |W| every this many steps (CAST's T1). */
    every: z.int().min(1).default(10),
    /** 'learned': one trained scale per output row, merged at the end; 'none': no scaling. */
    scaling: z.enum(['learned', 'none']).default('learned'),
    /** Weight of the distillation term (the task loss gets 1 - distill); 0 turns distillation off. */
    distill: z.number().min(0).max(1).default(0.67),
    /** Distillation temperature. */
    temperature: z.number().gt(0).default(2),
  })
  .refine(nLessThanM, nLessThanMError);
export type AdamSConfig = z.output<typeof adamsConfigSchema>;

/**
 * BDWP: N:M along rows for the forward product, N:M along columns for the input-gradient product, both
 * from |W| every `every` steps; dense weight gradient (plus SR-STE's lambda on forward-pruned weights).
 */
export const bdwpConfigSchema = z
  .strictObject({
    ...nm,
    /** Recompute both masks from |W| every this many steps. */
    every: z.int().min(1).default(1),
    /** SR-STE's decay of the weights the forward mask prunes (0: plain straight-through). */
    lambda: z.number().min(0).default(0),
  })
  .refine(nLessThanM, nLessThanMError);
export type BDWPConfig = z.output<typeof bdwpConfigSchema>;

/**
 * PATCH: per-tile gates (dense vs N:M) learned with the weights under a sparsity budget; the gates are
 * sigmoid(logit / T) with T annealed geometrically from tempStart to tempEnd over the stage.
 */
export const patchConfigSchema = z
  .strictObject({
    ...nm,
    /** Tile [rows, cols]; cols a multiple of m. */
    tile: z.tuple([z.int().min(1), z.int().min(1)]).default([16, 16]),
    /** Target sparsity of each targeted weight, in [0, 1 - n/m]. */
    target: z.number().min(0).max(1).default(0.3),
    /** Weight of each layer's budget term budgetWeight · (sparsity - target)². */
    budgetWeight: z.number().min(0).default(10),
    /** Gate temperature at the first and the last step (geometric in between). */
    tempStart: z.number().gt(0).default(1),
    tempEnd: z.number().gt(0).default(0.05),
    /** Starting logit of every gate (> 0: the tile starts on the sparse side). */
    init: z.number().default(0.01),
    /** Recompute the N:M masks inside the tiles from |W| every this many steps. */
    every: z.int().min(1).default(1),
  })
  .refine(nLessThanM, nLessThanMError)
  .refine((c) => c.target <= 1 - c.n / c.m, { message: 'target must be at most 1 - n/m (every tile N:M)', path: ['target'] })
  .refine((c) => c.tile[1] % c.m === 0, { message: 'tile width must be a multiple of m', path: ['tile'] })
  .refine((c) => c.tempEnd <= c.tempStart, { message: 'tempEnd must not exceed tempStart', path: ['tempEnd'] });
export type PatchConfig = z.output<typeof patchConfigSchema>;

/** The channel permutation search (`searchChannelPermutation`) before N:M pruning. */
export const permutationConfigSchema = z
  .strictObject({
    ...nm,
    /** 'magnitude' scores entries by |x|; 'value' takes them as given (e.g. Wanda scores). */
    rank: z.enum(['magnitude', 'value']).default('magnitude'),
    /** Most swaps applied (default: 4 × columns). */
    maxSwaps: z.int().min(0).optional(),
  })
  .refine(nLessThanM, nLessThanMError);
export type PermutationConfig = z.output<typeof permutationConfigSchema>;
