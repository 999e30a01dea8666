import type { Mask } from '@sparse/masks';
import type { Float32Tensor, Random, RegistryEntry, Tensor } from '@sparse/tensor';
import type { z } from 'zod';

/**
 * One adapter on one weight W of shape [out, in] (y = x Wᵀ, the PyTorch Linear layout).
 * `params` are the trainable tensors, named as the variant saves them; `config` is the parsed config.
 */
export interface AdapterState<C = unknown> {
  variant: string;
  shape: [out: number, inp: number];
  config: C;
  params: Record<string, Float32Tensor>;
}

export interface MergeOptions {
  /** The base's sparsity pattern; default: derived from the base's zeros (all kept for a dense base). */
  mask?: Mask;
  /** Add ΔW everywhere, filling the base's zeros (off by default: a merge keeps the mask). */
  densify?: boolean;
}

export interface UnmergeOptions {
  /** The mask the merge went through; default: derived from the merged weight's zeros. */
  mask?: Mask;
  /** The merge was done with `densify: true`. */
  densify?: boolean;
}

/**
 * How a variant's trainable support (entries, blocks, rows, channels) can be chosen from data: score
 * matrices [out, in] given to `initWithScores`. magnitude: no data (the variant's own rule); fisher:
 * E[g²] of the loss gradient g over calibration batches; gradient: |E[g]|; sensitivity: E[|W ⊙ g|];
 * principal: no data, |W_r| of the weight's rank-r approximation (LIFT's principal weights).
 */
export const SUPPORT_CRITERIA = ['magnitude', 'fisher', 'gradient', 'sensitivity', 'principal'] as const;
export type SupportCriterion = (typeof SUPPORT_CRITERIA)[number];

export interface SupportScoring {
  /** The criteria the variant's selection accepts, its paper's default first. */
  readonly criteria: readonly SupportCriterion[];
  /** 'gradient' scores are the signed E[g] (the variant ranks by a product with them), not |E[g]|. */
  readonly signed?: boolean;
  /** Why this config cannot use the data-free 'magnitude' criterion, if it cannot (e.g. LoSiA's re-localization). */
  needsData?(config: unknown): string | undefined;
}

/**
 * Statistics of the training data a data-aware init reads, as config fields of the same name:
 * covariance, the input covariance XᵀX / n [in, in] of the layer; gradient, the mean loss gradient
 * ∂L/∂W [out, in] over a few batches.
 */
export type InitStatistic = 'covariance' | 'gradient';

/** A method as a strategy object: everything the core needs to initialize, apply, merge and unmerge it. */
export interface AdapterVariant<C = unknown> extends RegistryEntry<'adapter'> {
  /** Unique, kebab-case. */
  readonly name: string;
  readonly describe: string;
  /** The config's zod schema (tools list its fields and defaults from it). */
  readonly schema: z.ZodType;
  /** Parses a user config (fills defaults); throws ArgumentError naming the field. */
  parseConfig(config: unknown): C;
  /** A fresh adapter for `base` (its ΔW is zero). */
  init(base: Tensor, config: unknown, rng: Random): AdapterState<C>;
  /** The dense ΔW the adapter adds to `base` (SPP's depends on the base, LoRA's does not). */
  delta(state: AdapterState<C>, base: Tensor): Float32Tensor;
  /**
   * x [n, in] -> x (W + ΔW)ᵀ without forming ΔW; given the layer's `bias` [out], adds the bias the layer
   * then uses (mergeBias when the variant has one, else the bias itself).
   */
  forward(x: Tensor, base: Tensor, state: AdapterState<C>, bias?: Tensor): Float32Tensor;
  /** A new weight W + ΔW (through the mask unless `densify`). */
  merge(base: Tensor, state: AdapterState<C>, opts?: MergeOptions): Float32Tensor;
  /** The base weight back from a merged one. */
  unmerge(merged: Tensor, state: AdapterState<C>, opts?: UnmergeOptions): Float32Tensor;
  /** Variants that also adapt the bias (SSF's shift): the merged bias [out] from the base bias (zeros when the layer has none). */
  mergeBias?(bias: Tensor | undefined, state: AdapterState<C>, opts?: MergeOptions): Float32Tensor;
  /** The base bias back from a merged one. */
  unmergeBias?(merged: Tensor, state: AdapterState<C>, opts?: UnmergeOptions): Float32Tensor;
  /**
   * Variants whose merge changes the support (PST prunes to its mask M): the mask of the weight that
   * `merge(base, state, opts)` writes, from the same arguments. Absent: a merge keeps the mask it went through.
   */
  maskAfterMerge?(base: Tensor, state: AdapterState<C>, opts?: MergeOptions): Mask;
  /** Variants whose support can be chosen by data scores (`initWithScores`): which criteria, and how. */
  readonly supportScores?: SupportScoring;
  /** The data statistics this (parsed) config still needs before init; a trainer computes them and puts them in the config. */
  initStatistics?(config: unknown): readonly InitStatistic[];
  /** Trainable scalars for a weight of `shape`, in closed form. */
  trainableCount(shape: readonly [number, number], config: unknown): number;
  /**
   * Why an adapter of this (parsed) config cannot be merged into the weight, or undefined when it can:
   * a bottleneck adapter with a nonlinearity is a function of the layer's input, not a ΔW. Such states
   * refuse `delta`, `merge` and `unmerge` with this reason, and train through their form's `output`.
   */
  unmergeable?(config: unknown): string | undefined;
  /**
   * Variants whose support spans the coupled weights of one model unit (S2FT's heads across Q/K/V and O):
   * given the model's coupled groups (`attachAdapters`' `groups`), the targeted members of each group are
   * initialized together; targeted weights in no group use `init`.
   */
  readonly coupled?: CoupledInit;
}

/**
 * Which channels of a member weight one unit of its group owns: unit u covers the `size` channels from
 * `offset + floor(u / share) · size` along the member's axis (share > 1: several units read one span,
 * as query heads share a key/value head under grouped-query attention).
 */
export interface CoupledSpan {
  offset: number;
  size: number;
  share: number;
}

/** One weight of a coupled group: its rows ('row', the outputs: Q, K, V, up, gate) or columns ('column', the inputs: O, down) carry the units. */
export interface CoupledMember {
  name: string;
  axis: 'row' | 'column';
  /**
   * What the weight is in its group, for variants that treat members differently (CLOVER pairs Q with K
   * and V with O): 'qkv' is a fused weight whose spans are Q, K and V in that order.
   */
  role?: 'q' | 'k' | 'v' | 'qkv' | 'o' | 'up' | 'gate' | 'down';
  /** Where each unit sits on that axis (several spans: a fused QKV weight holds Q, K and V). */
  spans: readonly CoupledSpan[];
}

/**
 * Weights of one model unit whose channels must be chosen together: the attention of a block (units =
 * query heads) or an MLP (units = hidden channels). The model knows these; the variant never reads names.
 */
export interface CoupledGroup {
  /** A name for errors and seed streams, e.g. 'model.layers.0.self_attn'. */
  name: string;
  kind: 'attention' | 'mlp';
  units: number;
  members: readonly CoupledMember[];
  /** Attention only: Q and K are rotated by position (RoPE) between the projections and their product, so W_Qᵀ W_K is not the score's bilinear form. */
  rotary?: boolean;
}

export interface CoupledInit {
  /** Whether this (parsed) config selects across coupled groups when the caller gives them. */
  wants(config: unknown): boolean;
  /**
   * Fresh adapters (zero ΔW) for the group's `members` (only those targeted), from their base weights;
   * `scores`, when given, replace the data-free rule as in `initWithScores`.
   */
  init(group: CoupledGroup, bases: Readonly<Record<string, Tensor>>, config: unknown, rng: Random, scores?: (name: string) => Tensor | undefined): Record<string, AdapterState>;
}
