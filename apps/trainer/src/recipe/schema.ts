// The recipe file: a model, data, and an ordered list of stages. Each stage kind has its own fields
// (steps, batch, ...); `method` and `config` name a registered method and its config, which the
// method's own schema validates (see methods.ts).

import { istConfigSchema, SUPPORT_CRITERIA } from '@sparse/lora-variants';
import { z } from 'zod';

export const STAGE_KINDS = ['pretrain', 'calibrate', 'prune', 'train', 'adapt', 'distill', 'activation', 'attention', 'evaluate', 'export', 'report'] as const;
export type StageKind = (typeof STAGE_KINDS)[number];

const posInt = z.int().min(1);
const nonNegInt = z.int().min(0);

/** A model built from scratch (size fields are checked by the model factory) or loaded from a checkpoint. */
export const modelSchema = z.union([
  z.strictObject({
    /** A safetensors file of ours, or a Hugging Face checkpoint directory / model.safetensors (GPT-2 or Llama names). */
    checkpoint: z.string().min(1),
  }),
  z.looseObject({
    architecture: z.enum(['gpt', 'llama']).default('gpt'),
  }),
]);

export const dataSchema = z.strictObject({
  /** embedded: the generated corpus; text: a UTF-8 file; jsonl: one {prompt, response} object per line. */
  source: z.enum(['embedded', 'text', 'jsonl']).default('embedded'),
  path: z.string().min(1).optional(),
  /** JSONL field names. */
  prompt: z.string().default('prompt'),
  response: z.string().default('response'),
  /** char (embedded default), byte (files' default), or a Hugging Face tokenizer.json. */
  tokenizer: z.union([z.enum(['auto', 'char', 'byte']), z.strictObject({ file: z.string().min(1) })]).default('auto'),
  /** Fraction of the token stream held out for evaluation (the end of the stream). */
  heldOut: z.number().gt(0).lt(1).default(0.1),
});

export const evalSchema = z.strictObject({
  /** Held-out windows per evaluation (evenly spaced; 0: all). */
  windows: nonNegInt.default(256),
  batch: posInt.default(32),
});

const stageBase = {
  /** A label for logs and the report (default: the kind and method). */
  name: z.string().min(1).optional(),
};

/** Fields of every stage that runs an optimizer. */
function trainingFields(defaults: { steps: number; lr: number; data?: 'train' | 'shifted' }) {
  return {
    steps: nonNegInt.default(defaults.steps),
    batch: posInt.default(8),
    lr: z.number().positive().default(defaults.lr),
    /** Linear warmup steps (default: 10% of steps, at most 100). */
    warmup: nonNegInt.optional(),
    /** Final learning rate as a fraction of the peak, after cosine decay. */
    minLrRatio: z.number().min(0).max(1).default(0.1),
    /** Global gradient-norm clip (0: off). */
    clipNorm: z.number().min(0).default(1),
    /** Write a checkpoint every this many steps (and at the end of the stage). */
    checkpointEvery: posInt.default(100),
    /** Which token stream to train on: the pretraining data or the embedded shifted task. */
    data: z.enum(['train', 'shifted']).default(defaults.data ?? 'train'),
  };
}

/**
 * DEFT's density loss: `weight` times a differentiable surrogate of the share of nonzero MLP activations is
 * added to the stage's loss ('tanh': mean tanh(|a| / temperature); 'l1-l2': the Hoyer ratio per token).
 */
const densityLossField = z
  .strictObject({
    weight: z.number().positive(),
    surrogate: z.enum(['tanh', 'l1-l2']).default('tanh'),
    temperature: z.number().positive().default(0.5),
  })
  .optional();

/** Which linear layers a stage touches: roles ('mlp.up', 'attn.qkv', ...) or weight names / name suffixes. */
const targets = z.array(z.string().min(1)).min(1).optional();

const methodField = z.string().min(1);
const configField = z.record(z.string(), z.unknown()).default({});

export const stageSchemas = {
  pretrain: z.strictObject({ stage: z.literal('pretrain'), ...stageBase, method: methodField.default('dense'), config: configField, ...trainingFields({ steps: 600, lr: 1e-2 }) }),
  calibrate: z.strictObject({
    stage: z.literal('calibrate'),
    ...stageBase,
    /** Calibration windows (of the model's context) drawn from the training data. */
    windows: posInt.default(64),
    batch: posInt.default(16),
  }),
  prune: z.strictObject({
    stage: z.literal('prune'),
    ...stageBase,
    method: methodField,
    config: configField,
    targets,
    /** Feed each block the outputs of the already-pruned blocks before it (SparseGPT/Wanda papers). */
    sequential: z.boolean().default(true),
    /** N:M only: search an input-channel permutation of each MLP down projection first, co-permuting the layer that feeds it. */
    permute: z.boolean().default(false),
    /**
     * Work bounds of the permutation search, per layer: candidate swaps evaluated (default: 2^28
     * score reads' worth, about a second or two per layer, so a [4096, 4096] layer gets 8192),
     * swaps applied (default 4 * columns), and milliseconds (default none).
     */
    permuteBudget: z
      .strictObject({
        maxEvaluations: posInt.optional(),
        maxSwaps: posInt.optional(),
        timeMs: z.number().positive().optional(),
      })
      .default({}),
    /** Which token stream the calibration windows come from: the pretraining data or the embedded shifted task. */
    data: z.enum(['train', 'shifted']).default('train'),
  }),
  train: z.strictObject({
    stage: z.literal('train'),
    ...stageBase,
    method: methodField.default('masked'),
    config: configField,
    targets,
    /**
     * How masked linear layers compute (methods that hold masks between updates: masked, static, set,
     * rigl, srigl, exploration): 'sparse' runs their products and weight gradients on the packed active
     * entries, 'dense' multiplies W ⊙ M, 'auto' picks sparse for layers at or below the density (and
     * above the size) where the sparse step was measured to be faster.
     */
    path: z.enum(['auto', 'dense', 'sparse']).default('auto'),
    ...trainingFields({ steps: 200, lr: 3e-3 }),
  }),
  adapt: z.strictObject({
    stage: z.literal('adapt'),
    ...stageBase,
    method: methodField,
    config: configField,
    /** Default: every linear layer. */
    targets,
    /** Merge the adapter into the weights at the end (through the base mask unless densify). */
    merge: z.boolean().default(true),
    /** Train and merge ΔW on every entry, dropping the base's sparsity pattern (default: ΔW goes through the mask in training and merge). */
    densify: z.boolean().default(false),
    /**
     * Sparse adapters that choose their support from scores (each variant declares the criteria it
     * accepts, its paper's default first): how the support is chosen, from `supportBatches` batches of
     * the stage's data. magnitude: no data, the variant's own rule (|W|, random groups, the low-rank
     * residual); fisher: E[g²] of the loss gradient; gradient: |E[g]| (signed E[g] for variants that
     * rank by a product with it); sensitivity: E[|W ⊙ g|]; principal: no data, |W_r| of the weight's
     * rank-`supportRank` approximation (LIFT). The `sft` method takes every criterion (default: a random support).
     */
    supportScores: z.enum(SUPPORT_CRITERIA).optional(),
    /** Rank of the approximation 'principal' scores use (default ceil(min(out, in) / 32) per layer). */
    supportRank: posInt.optional(),
    /** Calibration batches (of `batch` windows, from the stage's `data`) the support scores average over. */
    supportBatches: posInt.default(8),
    densityLoss: densityLossField,
    /**
     * IST layer sampling (Yao et al. 2024) for the LoRA-family methods (the adapter variants): each step
     * only the adapters of the transformer blocks drawn by learned importance are trained, and every
     * `every` steps the scores learn from suppression probes. The same fields as sft's `config.ist`
     * (`sft` takes it there; the zeroth-order and diff-pruning methods have no per-layer adapters).
     */
    ist: istConfigSchema.optional(),
    ...trainingFields({ steps: 200, lr: 1e-2 }),
  }),
  distill: z.strictObject({
    stage: z.literal('distill'),
    ...stageBase,
    method: methodField.default('squarehead'),
    config: configField,
    /** The teacher: the model as it was after this earlier stage (its name or index); default the last dense one. */
    teacher: z.union([z.string(), nonNegInt]).optional(),
    ...trainingFields({ steps: 200, lr: 3e-3 }),
  }),
  activation: z.strictObject({
    stage: z.literal('activation'),
    ...stageBase,
    /**
     * An activation-sparsity method of @sparse/activation (top-k, cats, teal, wina, r-sparse, ...):
     * calibrated on the calibration windows, then active in every later forward pass (evaluate,
     * fine-tuning, generate); or 'relu' (ReLU / squared-ReLU substitution of the MLP nonlinearity).
     */
    method: methodField,
    config: configField,
    /** Which token stream the calibration windows come from. */
    calibrationData: z.enum(['train', 'shifted']).default('train'),
    /**
     * Before calibrating, rotate each block norm's output into the right singular basis of the linear layers
     * reading it (WINA's transform: those layers' weights get orthogonal columns; the model computes the same
     * function, with one [d, d] product after each norm). For the sparsifier methods, not relu; refused on a
     * run with masks on those layers, which the rotation would make dense.
     */
    rotate: z.boolean().default(false),
    /** Adds DEFT's density loss to the fine-tuning steps. */
    densityLoss: densityLossField,
    /** Fine-tune every weight with the sparsifier active for `steps` steps afterwards (0: no fine-tuning). */
    ...trainingFields({ steps: 0, lr: 1e-3 }),
  }),
  attention: z.strictObject({
    stage: z.literal('attention'),
    ...stageBase,
    /**
     * A sparse-attention method of @sparse/attention (sparge, topk-blocks, seer, mustafar): block masks
     * predicted from each layer's q and k, or a pruned KV cache; active in every later forward pass
     * (evaluate, fine-tuning, generate). seer trains its gates on the calibration windows first.
     */
    method: methodField,
    config: configField,
    /** Which token stream the calibration windows come from. */
    calibrationData: z.enum(['train', 'shifted']).default('train'),
    /** Fine-tune every weight with the sparse attention active for `steps` steps afterwards (0: no fine-tuning). */
    ...trainingFields({ steps: 0, lr: 1e-3 }),
  }),
  evaluate: z.strictObject({
    stage: z.literal('evaluate'),
    ...stageBase,
    /** Which held-out streams to measure. */
    data: z.array(z.enum(['heldout', 'shifted'])).min(1).default(['heldout']),
    /**
     * LoRA Dropout's test-time ensemble (Lin et al.): average the predicted next-token probabilities over
     * `samples` dropout masks (drawn from `seed`, default the recipe's seed) and report that perplexity.
     * Needs a lora-dropout adapter attached and unmerged (an earlier adapt stage with merge: false).
     */
    ensemble: z.strictObject({ samples: z.number().int().positive(), seed: z.number().int().optional() }).optional(),
  }),
  export: z.strictObject({
    stage: z.literal('export'),
    ...stageBase,
    /** compressed: sparse layouts in safetensors; dense: plain safetensors; compressed-tensors: the layout vLLM reads; adapters: PEFT folders. */
    formats: z.array(z.enum(['compressed', 'dense', 'compressed-tensors', 'adapters'])).min(1).default(['compressed', 'dense']),
    /** Float dtype of the files (compressed-tensors is always 16-bit: float16 unless bfloat16). */
    dtype: z.enum(['float32', 'float16', 'bfloat16']).default('float32'),
  }),
  report: z.strictObject({ stage: z.literal('report'), ...stageBase, title: z.string().optional() }),
} as const;

export type StageSpec = { [K in StageKind]: z.output<(typeof stageSchemas)[K]> }[StageKind];
export type StageOf<K extends StageKind> = z.output<(typeof stageSchemas)[K]>;

export const recipeHeadSchema = z.strictObject({
  /** Shown in logs and the report (default: the file name). */
  name: z.string().min(1).optional(),
  description: z.string().optional(),
  seed: z.int().min(0).default(0),
  model: modelSchema.default({ architecture: 'gpt' }),
  data: dataSchema.default({ source: 'embedded', prompt: 'prompt', response: 'response', tokenizer: 'auto', heldOut: 0.1 }),
  eval: evalSchema.default({ windows: 256, batch: 32 }),
  stages: z.array(z.unknown()).min(1, 'a recipe needs at least one stage'),
});

export type ModelRef = z.output<typeof modelSchema>;
export type DataRef = z.output<typeof dataSchema>;

export interface ResolvedRecipe {
  name: string;
  description?: string;
  seed: number;
  model: ModelRef;
  data: DataRef;
  eval: z.output<typeof evalSchema>;
  stages: StageSpec[];
}
