// The 'pst' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const pstConfigSchema = z
  .object({
    /** Rank of the weight update U V. */
    r: z.number().int().positive().default(8),
    /** Scale of U V. */
    beta: z.number().positive().default(1),
    /** Rank of the low-rank score A B. */
    scoreRank: z.number().int().positive().default(8),
    /** Scale of the low-rank score. */
    alpha1: z.number().min(0).default(1),
    /** Scale of the row + column scores. */
    alpha2: z.number().min(0).default(1),
    /** Target sparsity of M (the schedule's end). */
    sparsity: z.number().min(0).lt(1).default(0.5),
    /** Sparsity at the schedule's start (and of a fresh adapter). */
    initialSparsity: z.number().min(0).lt(1).default(0),
    /** The cubic ramp runs from this fraction of the training steps ... */
    scheduleStart: z.number().min(0).lt(1).default(0),
    /** ... to this one, and holds the target after it. */
    scheduleEnd: z.number().gt(0).max(1).default(0.7),
  })
  .strict()
  .refine((c) => c.scheduleEnd > c.scheduleStart, { message: 'scheduleEnd must be after scheduleStart', path: ['scheduleEnd'] });
export type PSTConfig = z.output<typeof pstConfigSchema>;
export type PSTConfigInput = z.input<typeof pstConfigSchema>;
