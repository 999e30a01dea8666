import { z } from 'zod';

/** Scores of a channel: CFSP's activation-weighted relative magnitude, Wanda's, or the weight column norm. */
export const channelMetricSchema = z.enum(['cfsp', 'wanda', 'magnitude']);

/**
 * Structured pruning of the input channels of one layer (MLP neurons: columns of the down projection; heads:
 * groups of headDim columns of the attention output projection), every group keeping the same fraction.
 * The budget across blocks comes from `cfspBlockDensities`, per layer through `sparsity`.
 */
export const structuredConfigSchema = z.strictObject({
  /** Fraction of channel groups pruned, in [0, 1). */
  sparsity: z.number().min(0, 'sparsity must be in [0, 1)').lt(1, 'sparsity must be in [0, 1) (1 would prune everything)').default(0.5),
  /** Channels per unit: 1 for neurons, the head dimension for attention heads. */
  groupSize: z.int('groupSize must be an integer').min(1, 'groupSize must be at least 1').default(1),
  metric: channelMetricSchema.default('cfsp'),
  /** CFSP's local exponents: the weight term uses |W| * ||X_j||^b, the whole score is multiplied by ||X_j||^c. */
  b: z.number().default(1),
  c: z.number().default(1),
});

export type StructuredConfig = z.output<typeof structuredConfigSchema>;
export type StructuredConfigInput = z.input<typeof structuredConfigSchema>;
export type ChannelMetric = z.output<typeof channelMetricSchema>;

/** CFSP across a model: MLP neurons pruned with a per-block budget from block influence (coarse step), neurons by activation-weighted scores (fine step). */
export const cfspConfigSchema = z.strictObject({
  /** Fraction of all MLP neurons pruned. */
  sparsity: z.number().min(0).lt(1, 'sparsity must be in [0, 1)').default(0.25),
  /** Steepness of the sigmoid over standardized block importances. */
  a: z.number().positive().default(1),
  blockMetric: z.enum(['angular', 'cosine', 'mse', 'mae']).default('angular'),
  metric: channelMetricSchema.default('cfsp'),
});
export type CFSPConfig = z.output<typeof cfspConfigSchema>;
