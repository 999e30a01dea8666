// The configs of MeZO and Sparse MeZO as training methods, validated before any work starts.
import { z } from 'zod';

/** MeZO (Malladi et al.): SPSA with seeded perturbations, two forward passes per step, no gradients stored. */
export const mezoConfigSchema = z.strictObject({
  /** Perturbation scale. */
  eps: z.number().positive().default(1e-3),
});
export type MeZOConfig = z.output<typeof mezoConfigSchema>;

/** Sparse MeZO: perturb and update only the smallest-magnitude entries of each targeted weight (`density` of them). */
export const sparseMeZOConfigSchema = z.strictObject({
  eps: z.number().positive().default(1e-3),
  /** Density: the fraction of each weight's entries (the smallest |w|) that are perturbed and updated. */
  density: z.number().gt(0).max(1).default(0.75),
  /**
   * Recompute the mask from the current weights every `every` steps (0: chosen once at the stage's
   * start). Default 1: the paper computes the mask from the current weights at every step.
   */
  every: z.number().int().min(0).default(1),
});
export type SparseMeZOConfig = z.output<typeof sparseMeZOConfigSchema>;

/**
 * Zeroth-order fine-tuning with extreme sparsity (Guo et al. 2024): MeZO on only the most sensitive
 * entries, the `density` fraction of the targeted weights with the largest empirical Fisher E[g²] on
 * calibration batches, chosen once before the stage. (The paper's 4-bit quantized base is not part of it.)
 */
export const sensitiveMeZOConfigSchema = z.strictObject({
  eps: z.number().positive().default(1e-3),
  /** The fraction of the targeted weights' (kept) entries perturbed and updated, the largest E[g²] over all of them. */
  density: z.number().gt(0).max(1).default(0.001),
});
export type SensitiveMeZOConfig = z.output<typeof sensitiveMeZOConfigSchema>;
