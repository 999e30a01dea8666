// The 's2ft' variant's config: its zod schema (fields, defaults, strictness) and types.
import { z } from 'zod';

export const s2ftConfigSchema = z
  .object({
    /** 'row': output channels (W's rows); 'column': input channels (W's columns). */
    axis: z.enum(['row', 'column']).default('row'),
    /** Channels per group (e.g. the head dimension); the axis length must be a multiple of it. */
    groupSize: z.number().int().positive().default(1),
    /** How many groups train. */
    groups: z.number().int().positive().default(1),
    /** Random groups, or those with the largest summed |W|. */
    selection: z.enum(['random', 'magnitude']).default('random'),
  })
  .strict();
export type S2FTConfig = z.output<typeof s2ftConfigSchema>;
export type S2FTConfigInput = z.input<typeof s2ftConfigSchema>;
