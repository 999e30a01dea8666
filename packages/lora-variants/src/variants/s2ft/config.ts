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
    /**
     * When the caller gives the model's coupled groups (sparse-train does): select whole attention heads
     * across Q/K/V (rows) and O (columns), and MLP channels across up/gate (rows) and down (columns), as
     * the paper does; axis, groupSize and groups then apply only to targeted weights in no group.
     */
    coupled: z.boolean().default(true),
    /** Coupled: query heads trained per attention block (their K/V heads under grouped-query attention). */
    heads: z.number().int().positive().default(1),
    /** Coupled: hidden channels trained per MLP. */
    channels: z.number().int().positive().default(8),
    /**
     * The paper's partial backpropagation: on a dense base the weight stays W and the block trains as
     * the layer's output term (`AdapterModel.outputTerm`, which sparse-train adds), so only the selected
     * channels' gradient is formed, never the full weight gradient. Off: ΔW is part of effectiveWeight.
     */
    partialBackprop: z.boolean().default(false),
  })
  .strict();
export type S2FTConfig = z.output<typeof s2ftConfigSchema>;
export type S2FTConfigInput = z.input<typeof s2ftConfigSchema>;
