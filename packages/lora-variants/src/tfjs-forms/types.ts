// The tfjs face of an adapter variant: how its trainable tensors turn the frozen base weight into
// the weight the forward pass uses. The core variant (../variants/<name>/variant.ts) stays free of
// tfjs; a variant trains in tfjs once it has a form (a built-in's is ../variants/<name>/tfjs.ts, listed
// in ../variants/builtins-tfjs.ts; a user's comes through registerTfForm). Forms may gain optional
// members; existing ones keep their meaning.
import type { Tensor } from '@sparse/tensor';
import type * as tf from '@tensorflow/tfjs-core';
import type { AdapterModel } from '../tfjs.js';
import type { AdapterState } from '../variants/types.js';

export interface TfFormContext {
  /** The frozen base weight W [out, in] (a tf.Variable the adapter never trains). */
  base: tf.Tensor;
  /** The adapter's tensors by the names the core state uses (trainable ones are tf.Variables). */
  vars: Readonly<Record<string, tf.Variable>>;
  /** The state at attach time (config, shape, variant name); its params are not kept current. */
  state: AdapterState;
  /** The base's 0/1 mask [out, in] as float32 (1 where the base is kept; all ones when the adapter densifies). */
  mask: tf.Tensor;
  /** Whether the forward pass is for training (dropout-like behaviour applies only then). */
  training: boolean;
  /** True when `mask` keeps every entry (a dense base, or the adapter densifies): a form may then skip the projection. */
  maskFull?: boolean;
}

export interface TfAdapterForm {
  /** The core variant's name. */
  readonly variant: string;
  /** W + ΔW as a differentiable tensor, inside the caller's tidy. */
  effectiveWeight(ctx: TfFormContext): tf.Tensor;
  /**
   * Forms whose adapter is not a weight (a bottleneck with a nonlinearity; the variant's `unmergeable`
   * says so for the config): the term [n, out] added to the layer's output for its input x [n, in], inside
   * the caller's tidy. Their `effectiveWeight` is then the base weight.
   */
  output?(ctx: TfFormContext & { x: tf.Tensor2D }): tf.Tensor2D | undefined;
  /** Forms that adapt the bias too: the bias [out] the forward pass uses, from the base bias (null: the layer has none). */
  effectiveBias?(ctx: TfFormContext & { bias: tf.Tensor | null }): tf.Tensor;
  /**
   * The form's weight is already zero wherever the base mask is (it multiplies by the mask or by W
   * itself), so AdapterModel need not project it. Forms without it are projected onto the base mask
   * in training (W + (W' − W) ⊙ M), which is what their merge computes.
   */
  readonly keepsMask?: boolean;
  /** Names of state params kept fixed during training (e.g. asymmetric LoRA's random A). */
  readonly frozen?: readonly string[];
  /**
   * Variants with a lifecycle during training (a schedule, periodic re-selection, counters that must
   * survive a resume): the hooks a training loop calls. Created once per training run of an adapter.
   */
  training?(ctx: AdapterTrainingContext): AdapterTrainingHooks;
  /**
   * Forms whose training drops rows of B and columns of A (LoRA Dropout): a test-time ensemble averages
   * the model over such masks, each row and column kept with probability 1 − dropout(config).
   */
  readonly testTimeEnsemble?: { dropout(config: unknown): number };
}

/** What a training loop gives a form's `training` hooks. */
export interface AdapterTrainingContext {
  model: AdapterModel;
  /** The adapter being trained (the model's active one). */
  adapter: string;
  /** The adapter's parsed config. */
  config: unknown;
  /** Steps the training run takes in all (schedules are fractions of them). */
  steps: number;
  /**
   * Score matrices [out, in] per layer from fresh data of the run (the run's support criterion, the
   * model's current weights); `draw` names the batches, so a resumed run draws the same ones. Absent
   * when the loop has no data scores to give.
   */
  scores?(draw: string): (layer: string) => Tensor | undefined;
}

export interface AdapterTrainingHooks {
  /**
   * Before step `step` (1-based), ahead of its forward pass. Returns the variables it re-initialized
   * (`reset`: their optimizer moments must start afresh) and an event for the metrics, if any.
   */
  beforeStep?(step: number): { reset?: readonly tf.Variable[]; event?: Record<string, unknown> } | void;
  /**
   * Sees each step's gradient of each trained variable (as the optimizer will apply it, after any
   * clipping), before the update; e.g. RoseLoRA's smoothed sensitivity |θ · ∂L/∂θ|. Must not keep `grad`.
   */
  gradient?(variable: tf.Variable, grad: tf.Tensor): void;
  /** JSON-safe state a checkpoint inside the run carries, so a resumed run continues exactly. */
  state?(): unknown;
  /** Puts a saved `state()` back, before the first step of a resumed run. */
  load?(state: unknown): void;
  /**
   * A differentiable term the training loop adds to the task loss of every step (a regularizer such as
   * selective LoRA's gate penalty), built from the model's current variables inside the step's gradient
   * tape. Absent or undefined: the loss is the task loss.
   */
  loss?(): tf.Scalar | undefined;
  /**
   * After the last step: a line for the log, an event for the metrics, a note for the report, and a
   * short phrase for the stage's one-line summary.
   */
  finish?(): { log?: string; event?: Record<string, unknown>; note?: string; summary?: string };
}
