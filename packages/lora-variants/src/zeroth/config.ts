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
});
export type SparseMeZOConfig = z.output<typeof sparseMeZOConfigSchema>;
