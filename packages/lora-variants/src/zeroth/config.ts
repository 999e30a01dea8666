// The configs of MeZO and Sparse MeZO as training methods, validated before any work starts.
import { z } from 'zod';

/** MeZO (Malladi et al.): SPSA with seeded perturbations, two forward passes per step, no gradients stored. */
export const mezoConfigSchema = z.strictObject({
  /** Perturbation scale. */
  eps: z.number().positive().default(1e-3),
});
export type MezoConfig = z.output<typeof mezoConfigSchema>;

/** Sparse MeZO: perturb and update only the smallest-magnitude fraction of each targeted weight. */
export const sparseMezoConfigSchema = z.strictObject({
  eps: z.number().positive().default(1e-3),
  /** Fraction of each weight's entries (the smallest |w|) that are perturbed and updated. */
  fraction: z.number().gt(0).max(1).default(0.75),
});
export type SparseMezoConfig = z.output<typeof sparseMezoConfigSchema>;
