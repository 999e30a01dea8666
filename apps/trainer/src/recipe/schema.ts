// The recipe file: a model, data, and an ordered list of stages. Each stage kind has its own fields
// (steps, batch, ...); `method` and `config` name a registered method and its config, which the
// method's own schema validates (see methods.ts).

import { z } from 'zod';

export const STAGE_KINDS = ['pretrain', 'calibrate', 'prune', 'train', 'adapt', 'distill', 'evaluate', 'export', 'report'] as const;
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

/** Which linear layers a stage touches: roles ('mlp.up', 'attn.qkv', ...) or weight names / name suffixes. */
const targets = z.array(z.string().min(1)).min(1).optional();

const methodField = z.string().min(1);
const configField = z.record(z.string(), z.unknown()).default({});

/**
 * How a sparse adapter's support (which entries, blocks, rows or channels train) is chosen:
 * - magnitude: no data; the variant's own rule from its config (`score`/`selection`: |W| unless set to
 *   random; S2FT random groups, DSEE the low-rank residual).
 * - fisher: mean over calibration batches of the squared loss gradient, E[g²] (the empirical Fisher diagonal).
 * - gradient: |E[g]|, the magnitude of the accumulated gradient (SparseAdapter gets the signed E[g] and
 *   ranks B's entries by |E[g] Aᵀ|, its gradient at init).
 * - sensitivity: E[|W ⊙ g|], the first-order estimate of the loss change when an entry is removed.
 */
export const SUPPORT_SCORES = ['magnitude', 'fisher', 'gradient', 'sensitivity'] as const;
export type SupportScores = (typeof SUPPORT_SCORES)[number];

/** Adapter methods that take support scores: the criteria each accepts, the first being its paper's default. */
export const SUPPORT_SCORE_METHODS: Readonly<Record<string, readonly SupportScores[]>> = {
  // RoSA: accumulated squared gradients (a Fisher estimate)
  rosa: ['fisher', 'gradient', 'sensitivity', 'magnitude'],
  // SMT: the blocks with the largest accumulated |gradient|
  smt: ['gradient', 'fisher', 'sensitivity', 'magnitude'],
  // LoSiA: gradient-based sensitivity |W ⊙ G| for subnet localization
  losia: ['sensitivity', 'gradient', 'fisher', 'magnitude'],
  // SparseAdapter: a gradient pruning-at-init criterion (SNIP-like); the other scores do not apply to B
  'sparse-adapter': ['gradient', 'magnitude'],
  // data-free in their papers: random groups (S2FT), the low-rank residual (DSEE), the smallest |W| (SaRA)
  s2ft: ['magnitude', 'fisher', 'gradient', 'sensitivity'],
  dsee: ['magnitude', 'fisher', 'gradient', 'sensitivity'],
  sara: ['magnitude', 'fisher', 'gradient', 'sensitivity'],
};

/** The criteria an adapt method accepts (its default first), or undefined for a method without a scored support. */
export function supportCriteria(method: string): readonly SupportScores[] | undefined {
  return Object.hasOwn(SUPPORT_SCORE_METHODS, method) ? SUPPORT_SCORE_METHODS[method] : undefined;
}

/** The support criterion of an adapt stage: the recipe's, else the method's default ('magnitude' for methods without a support). */
export function supportScoresOf(stage: { method: string; supportScores?: SupportScores }): SupportScores {
  return stage.supportScores ?? supportCriteria(stage.method)?.[0] ?? 'magnitude';
}

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
    /** Which token stream the calibration windows come from: the pretraining data or the embedded shifted task. */
    data: z.enum(['train', 'shifted']).default('train'),
  }),
  train: z.strictObject({ stage: z.literal('train'), ...stageBase, method: methodField.default('masked'), config: configField, targets, ...trainingFields({ steps: 200, lr: 3e-3 }) }),
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
     * dynamic-rank only: prune rank-1 components by importance while training, from r per layer down to
     * `target` per layer on average (a cubic schedule between `start` and `end`, fractions of the steps).
     * Default for dynamic-rank: target r/2.
     */
    rankBudget: z
      .strictObject({
        target: z.number().positive(),
        start: z.number().min(0).max(1).default(0.2),
        end: z.number().min(0).max(1).default(0.7),
        every: z.int().min(1).default(10),
      })
      .refine((b) => b.end >= b.start, { message: 'end must not come before start', path: ['end'] })
      .optional(),
    /**
     * Sparse adapters (rosa, smt, losia, s2ft, sparse-adapter, dsee, sara): how the trainable support is
     * chosen, from `supportBatches` batches of the stage's data. Default per method: rosa fisher, smt
     * gradient, losia sensitivity, sparse-adapter gradient, the others magnitude (no data).
     */
    supportScores: z.enum(SUPPORT_SCORES).optional(),
    /** Calibration batches (of `batch` windows, from the stage's `data`) the support scores average over. */
    supportBatches: posInt.default(8),
    /**
     * losia only: re-localize every this many steps: each layer's trained core goes into the weight and a
     * new subnet is chosen by `supportScores` at the current weights (fresh `supportBatches` batches).
     */
    relocalizeEvery: posInt.optional(),
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
  evaluate: z.strictObject({
    stage: z.literal('evaluate'),
    ...stageBase,
    /** Which held-out streams to measure. */
    data: z.array(z.enum(['heldout', 'shifted'])).min(1).default(['heldout']),
  }),
  export: z.strictObject({
    stage: z.literal('export'),
    ...stageBase,
    /** compressed: sparse layouts in safetensors; dense: plain safetensors; adapters: PEFT folders. */
    formats: z.array(z.enum(['compressed', 'dense', 'adapters'])).min(1).default(['compressed', 'dense']),
    dtype: z.enum(['float32', 'float16']).default('float32'),
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
