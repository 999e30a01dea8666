import { z } from 'zod';
import { DENSE_LINEAR_ROLES, rolesField } from '../common.js';

/**
 * N:M activations: in every token, each group of M consecutive features keeps its N largest |x|, so the
 * product that consumes them sees an N:M-sparse operand. The site's features must be a multiple of M.
 */
export const nmActivationConfigSchema = z
  .strictObject({
    /** Kept per group (default 2). */
    n: z.int('n must be an integer').min(1, 'n must be at least 1').default(2),
    /** Group size along the features (default 4). */
    m: z.int('m must be an integer').min(2, 'm must be at least 2').default(4),
    /** Site roles acted on (default the inputs of every dense linear layer: the GEMM operands). */
    roles: rolesField(DENSE_LINEAR_ROLES),
  })
  .refine((c) => c.n < c.m, { message: 'N:M needs N < M (N kept in every group of M)', path: ['n'] });

export type NMActivationConfig = z.output<typeof nmActivationConfigSchema>;
export type NMActivationConfigInput = z.input<typeof nmActivationConfigSchema>;
