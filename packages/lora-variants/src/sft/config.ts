// The config of sparse fine-tuning as a training method (SparseFineTuner in ./tfjs.ts): what a recipe
// gives, validated before any work starts.
import { z } from 'zod';

/** Sparse fine-tuning (SpIEL-style): a trainable delta on a random support of each targeted weight, Adam on its values only. */
export const sftConfigSchema = z.strictObject({
  /** Fraction of each weight's entries trained. */
  density: z.number().gt(0).max(1).default(0.01),
  /** Drop-and-regrow every this many steps (0: keep the initial support). */
  every: z.int().min(0).default(0),
  /** Fraction of the active entries dropped and regrown by accumulated gradient at each reselection. */
  regrowFraction: z.number().gt(0).max(1).default(0.3),
  weightDecay: z.number().min(0).default(0),
});
export type SFTConfig = z.output<typeof sftConfigSchema>;
