// The 'dynamic-rank' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const dynamicRankConfigSchema = z
  .object({
    /** Rank at attach time (the most any layer can keep). */
    r: z.number().int().positive().default(8),
    alpha: z.number().positive().default(8),
    rslora: z.boolean().default(false),
    /**
     * In training: prune components by importance from r per layer down to `target` per layer on
     * average, on a cubic schedule between `start` and `end` (fractions of the steps), every `every`
     * steps and at `end` (AdaLoRA's shape). Absent: target r/2 from 20% to 70% of the steps, every 10.
     */
    rankBudget: z
      .strictObject({
        target: z.number().positive(),
        start: z.number().min(0).max(1).default(0.2),
        end: z.number().min(0).max(1).default(0.7),
        every: z.int().min(1).default(10),
      })
      .refine((b) => b.end >= b.start, { message: 'end must not come before start', path: ['end'] })
      .optional(),
  })
  .strict();
export type DynamicRankConfig = z.output<typeof dynamicRankConfigSchema>;
