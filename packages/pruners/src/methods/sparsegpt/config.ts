import { z } from 'zod';
import { checkPattern, patternFields, withDefaultSparsity } from '../../pattern.js';

/** SparseGPT (Frantar & Alistarh 2023) with the defaults of the reference implementation. */
export const sparseGPTConfigSchema = z
  .strictObject({
    ...patternFields,
    /** Columns per block: masks are chosen per block and the columns after it get one lazy batch update. */
    blocksize: z.int('blocksize must be an integer').min(1, 'blocksize must be at least 1').default(128),
    /** Dampening: percdamp * mean(diag H) is added to the diagonal of H before inverting it. */
    percdamp: z.number().min(0, 'percdamp must be non-negative').default(0.01),
    /**
     * GPTQ's activation order: process the input columns by descending diag(H) (the inputs with the most
     * energy first, ties to the lower index), then put the result back in the layer's column order. Off by
     * default, as in the SparseGPT reference. Unstructured or a given mask only: N:M groups are runs of M
     * consecutive columns of the layer, which the reordering scatters.
     */
    actOrder: z
      .boolean()
      .default(false)
      .describe(
        "Process input columns by descending diag(H) (GPTQ's act-order), then un-permute the result; unstructured or a given mask only, not N:M",
      ),
  })
  .superRefine((v, ctx) => {
    checkPattern(v, ctx);
    if (v.actOrder && v.n !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['actOrder'],
        message: `actOrder cannot be combined with N:M (${v.n}:${v.m}): N:M groups are M consecutive input columns, and processing columns by descending diag(H) scatters each group across the order; use unstructured sparsity or actOrder: false`,
      });
    }
    // N:M groups are chosen inside a block, so a block must hold whole groups.
    if (v.m !== undefined && v.blocksize % v.m !== 0) {
      ctx.addIssue({ code: 'custom', path: ['blocksize'], message: `blocksize (${v.blocksize}) must be a multiple of m (${v.m}) for N:M` });
    }
  })
  .transform(withDefaultSparsity);

export type SparseGPTConfig = z.output<typeof sparseGPTConfigSchema>;
export type SparseGPTConfigInput = z.input<typeof sparseGPTConfigSchema>;
