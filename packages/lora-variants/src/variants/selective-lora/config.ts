// The 'selective-lora' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const selectiveLoRAConfigSchema = z
  .object({
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    /** Rank blocks, each with one gate; must divide r. */
    blocks: z.number().int().positive().default(1),
    /** Initial gate value (the block is on while its gate is > 0). */
    gateInit: z.number().default(1),
    /**
     * Sparsity pressure on the indicators: λ · Σ_b max(g_b, 0) over every block of every layer is added
     * to the training loss (an L1 penalty on the gate values of the blocks that are on), so blocks the
     * task does not pay for fall to g_b ≤ 0 and switch off. 0: no penalty (gates move only with the task).
     */
    lambda: z.number().min(0).default(0),
  })
  .strict();
export type SelectiveLoRAConfig = z.output<typeof selectiveLoRAConfigSchema>;
