// The shared vocabulary of the pruners: what a pruner reads (a layer's weight and calibration statistics)
// and what it returns (a mask, the new weight and, where it knows, the reconstruction error).

import type { Mask } from '@sparse/masks';
import type { Float32Tensor, RegistryEntry, Tensor } from '@sparse/tensor';
import type { z } from 'zod';

/**
 * Calibration statistics of one linear layer's inputs X [tokens, in], as the accumulators of
 * `./calibration` produce them. Each pruner reads only what it needs (see `PrunerDefinition.calibration`).
 */
export interface LayerStats {
  /** ||X_j||_2 over all tokens, one per input column [in] (Wanda). */
  columnNorms?: Tensor;
  /** Mean of X_j over tokens [in] (DSnoT's expected reconstruction error). */
  columnMeans?: Tensor;
  /** Population variance of X_j over tokens [in] (DSnoT's regrowth criterion). */
  columnVariances?: Tensor;
  /** H = 2/n Σ x^T x over the n tokens [in, in] (SparseGPT; DSnoT's exact error check). */
  hessian?: Tensor;
  /** Number of tokens the statistics were computed from. */
  tokens?: number;
}

/** Which accumulator a pruner needs: per-column statistics or the Hessian. */
export type CalibrationKind = 'columns' | 'hessian';

export interface PruneInput<C = unknown> {
  /** Layer name, used in every error message. */
  name: string;
  /** The dense weight [out, in] (any real dtype and strides; read, never written). */
  weight: Tensor;
  stats?: LayerStats;
  /** An existing mask of the weight's shape: SparseGPT keeps it fixed and only updates weights; DSnoT starts from it. */
  mask?: Mask;
  config: C;
}

/** What the convenience functions (wandaPrune, ...) and pruneLayer take: a PruneInput whose config may be left out. */
export type PruneRequest<C = unknown> = Omit<PruneInput<C>, 'config'> & { config?: C | undefined };

/**
 * A layer's reconstruction error in units of ||(W - W') X^T||_F^2 / tokens, computed from the Hessian
 * H = 2/n X^T X as Σ_rows (w - w') H (w - w')^T / 2 with the undampened H: the error of the returned
 * weight on the calibration inputs.
 */
export interface ReconstructionEstimate {
  /** Sum over output rows. */
  total: number;
  /** One value per output row. */
  perRow: Float64Array;
  /** The total before the method ran (DSnoT: the error of the mask it started from). */
  initial?: number;
  /**
   * SparseGPT: the same sum against the dampened Hessian H + λI it inverted (λ = percdamp · mean diag H),
   * i.e. Σ e² / 2 over its OBS steps. It equals total + λ/2 · ||W - W'||² (dead inputs aside), so it
   * overstates the real error: what the method minimized, not what the layer's outputs lose.
   */
  dampened?: number;
}

export interface PruneResult {
  /** Kept (1) and pruned (0) entries of the weight, shape [out, in]. */
  mask: Mask;
  /** The new weight [out, in], float32, zero wherever the mask prunes (SparseGPT also changes kept weights). */
  weight: Float32Tensor;
  error?: ReconstructionEstimate;
}

/** A pruning method as the registry holds it: a registry entry (kind 'pruner') plus its calibration needs and prune. */
export interface PrunerDefinition<S extends z.ZodType = z.ZodType> extends RegistryEntry<'pruner'> {
  /** Unique, kebab-case. */
  readonly name: string;
  readonly describe: string;
  /** Validates a config and fills in defaults; `prune` receives its output. */
  readonly schema: S;
  /** The calibration statistics `prune` reads, so a pipeline runs only the accumulators it needs. */
  calibration: readonly CalibrationKind[];
  prune(input: PruneInput<z.output<S>>): PruneResult;
}
