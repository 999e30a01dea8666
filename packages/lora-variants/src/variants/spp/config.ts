// The 'spp' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const sppConfigSchema = z.object({
  /** Initial value of every column scale (the row scales start at 0, so ΔW starts at 0 whatever this is). */
  colInit: z.number().default(1),
  /**
   * Number of column-scale vectors, SPP's r: the output rows split into `rank` equal contiguous groups and
   * group g scales its rows' inputs by column vector g (the paper's repeat-interleave of W_α), so the
   * scale matrix has rank ≤ r. 1 is one column vector shared by all rows. `out` must be divisible by it.
   */
  rank: z.number().int().positive().default(1),
})
  // Strict, like LoRA's: unknown keys are errors.
  .strict();
export type SPPConfig = z.output<typeof sppConfigSchema>;
export type SPPConfigInput = z.input<typeof sppConfigSchema>;
