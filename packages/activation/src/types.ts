// The shapes every activation sparsifier speaks. A *site* is one place in a model where activations
// flow: the input of a linear layer, or an MLP's activation (the activated gate of a gated MLP, the
// nonlinearity's output of a plain one). A method calibrates on samples of the sites it acts on and
// returns one SiteSparsifier per site; a model (the trainer's decoder, its tfjs forward, or a user's
// own code) calls `apply` on each token's activations before they are consumed.

import type { RegistryEntry } from '@sparse/tensor';
import type { z } from 'zod';

export type SiteKind = 'linear-input' | 'mlp-activation';

/** One place in a model where a sparsifier can act. */
export interface Site {
  /**
   * Unique name. For a linear layer's input: the layer's weight name ('h.0.mlp.c_proj.weight');
   * for an MLP activation: the MLP's prefix plus 'act' ('h.0.mlp.act', 'model.layers.0.mlp.experts.1.act').
   */
  name: string;
  kind: SiteKind;
  /** Transformer block index. */
  block: number;
  /** The linear layer's role ('attn.qkv', 'attn.q', 'attn.out', 'mlp.up', 'mlp.gate', 'mlp.down', ...) or 'mlp.act'. */
  role: string;
  /** Features per token. */
  features: number;
  /** For a linear input: the layer's output width. */
  out?: number;
}

/** A site with the weight that consumes it (linear inputs only): WINA's column norms, R-Sparse's SVD. */
export interface SiteWeight {
  /** The weight, [out, in] row-major (y = x Wᵀ). */
  data: Float32Array;
  out: number;
  in: number;
}

/** Calibration activations of one site: `tokens` rows of `site.features` values, row-major. */
export interface SiteSample {
  site: Site;
  x: Float32Array;
  tokens: number;
  weight?: SiteWeight;
}

/** Low-rank factors of a linear correction term: (original - sparse) a b. */
export interface CorrectionFactors {
  readonly in: number;
  readonly out: number;
  readonly rank: number;
  /** [in, rank] row-major. */
  readonly a: Float32Array;
  /** [rank, out] row-major. */
  readonly b: Float32Array;
}

/** A calibrated sparsifier for one site. */
export interface SiteSparsifier {
  readonly site: string;
  /**
   * Zeroes entries of x [tokens, features] (row-major) in place and returns how many it kept.
   * The caller passes activations it is about to consume; nothing else is changed.
   */
  apply(x: Float32Array, tokens: number): number;
  /**
   * For methods that add a term to the layer's product for the dropped channels (R-Sparse's low-rank
   * part): given the original activations and the sparsified ones, the term [tokens, out] to add to
   * x_sparse Wᵀ. Absent when the method adds nothing.
   */
  correction?(original: Float32Array, sparse: Float32Array, tokens: number): Float32Array;
  /**
   * Which entries of x [tokens, features] `apply` would keep (1) or zero (0), without changing x. The /tfjs
   * subpath builds its mask from it (an exact zero that is kept still passes the gradient). Optional: a
   * sparsifier without it is masked by which entries `apply` leaves non-zero.
   */
  keep?(x: Float32Array, tokens: number): Uint8Array;
  /**
   * The factors of `correction` when it is linear in the dropped part: correction = (original - sparse) a b
   * with a [in, rank] and b [rank, out] row-major (R-Sparse: a = V_r S_r, b = U_rᵀ). The /tfjs subpath
   * multiplies by them so the gradient flows through the correction too.
   */
  readonly correctionFactors?: CorrectionFactors;
  /** Plain JSON enough for the method's `restore` to rebuild it (thresholds, levels, ranks). */
  state(): unknown;
}

/** A registered activation-sparsity method. */
export interface ActivationMethod<S extends z.ZodType = z.ZodType> extends RegistryEntry {
  readonly kind: 'activation';
  readonly schema: S;
  /** Whether the method acts on `site` under `config` (which layers' inputs, or MLP activations). */
  acts(config: z.output<S>, site: Site): boolean;
  /** What `calibrate` needs beside the activations: the consuming weights ('weight'), or nothing. */
  readonly needs: readonly 'weight'[];
  /** One sparsifier per sample's site, fitted on the samples (`config` already parsed). */
  calibrate(config: z.output<S>, samples: readonly SiteSample[]): SiteSparsifier[];
  /** Rebuilds a sparsifier from its `state()`; `weight` is given for linear-input sites when `needs` has it. */
  restore(config: z.output<S>, site: Site, state: unknown, weight?: SiteWeight): SiteSparsifier;
}
