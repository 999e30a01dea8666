// The attention-method registry (createRegistry from @sparse/tensor, the shape every method registry of the
// project has): the dynamic methods a recipe can name, each with a zod config schema. A block method
// predicts a per-head BlockMask from a layer's q and k; a kv-cache method builds the cache decode reads.

import { ArgumentError, createRegistry, parseConfig, type Registry, type RegistryEntry } from '@sparse/tensor';
import { z } from 'zod';
import type { AttentionShape } from './attention.js';
import { spargePredict, topKBlocks, type DynamicBlockMask } from './dynamic/predict.js';
import { seerPredict, type SeerGate } from './dynamic/seer.js';
import { BitmapKVCache } from './kv/bitmap-cache.js';

/** A layer's q [heads, seq, headDim] and k [kvHeads, seq, headDim]. */
export interface QKInput {
  shape: AttentionShape;
  q: Float32Array;
  k: Float32Array;
}

/** What a block method may need besides q and k: Seer's trained gate. */
export interface PredictContext {
  gate?: SeerGate;
}

export interface BlockAttentionMethod<S extends z.ZodType = z.ZodType> extends RegistryEntry<'attention'> {
  readonly target: 'block-mask';
  readonly schema: S;
  /** What `predict` needs in its context beside q and k: 'gate', a gate trained per layer (trainSeerGate) from the model's q and k. */
  readonly needs?: readonly 'gate'[];
  predict(config: z.output<S>, input: QKInput, context?: PredictContext): DynamicBlockMask;
}

export interface KVAttentionMethod<S extends z.ZodType = z.ZodType> extends RegistryEntry<'attention'> {
  readonly target: 'kv-cache';
  readonly schema: S;
  createCache(config: z.output<S>, dims: { kvHeads: number; headDim: number }): BitmapKVCache;
}

export type AttentionMethod<S extends z.ZodType = z.ZodType> = BlockAttentionMethod<S> | KVAttentionMethod<S>;

const blockSizeField = z.int('blockSize must be an integer').min(1, 'blockSize must be at least 1').default(64);
const causalField = z.boolean().default(true);
const unitOpen = (name: string) => z.number(`${name} must be a number`).gt(0, `${name} must be > 0`).max(1, `${name} must be <= 1`);
const sparsity = (name: string) => z.number(`${name} must be a number`).min(0, `${name} must be >= 0`).lt(1, `${name} must be < 1`);

/** SpargeAttn-style: cumulative pooled mass per query block, self-similarity bypass. */
export const spargeConfigSchema = z.strictObject({
  blockSize: blockSizeField,
  /** Pooled probability mass kept per query block, in (0, 1]; 1 = dense. */
  cdfThreshold: unitOpen('cdfThreshold').default(0.9),
  /** Blocks less self-similar than this are computed in full, in [-1, 1]. */
  simThreshold: z.number('simThreshold must be a number').min(-1, 'simThreshold must be >= -1').max(1, 'simThreshold must be <= 1').default(0.5),
  causal: causalField,
});
export type SpargeConfig = z.output<typeof spargeConfigSchema>;

/** The diagonal plus the k best key blocks by pooled score. */
export const topKBlocksConfigSchema = z.strictObject({
  blockSize: blockSizeField,
  k: z.int('k must be an integer').min(0, 'k must be at least 0').default(4),
  causal: causalField,
});
export type TopKBlocksConfig = z.output<typeof topKBlocksConfigSchema>;

/** SeerAttention-style learned gate: training settings (for trainSeerGate in /tfjs) and the inference rule. */
export const seerConfigSchema = z
  .strictObject({
    blockSize: blockSizeField,
    gateDim: z.int('gateDim must be an integer').min(1, 'gateDim must be at least 1').default(16),
    steps: z.int('steps must be an integer').min(0, 'steps must be at least 0').default(200),
    learningRate: z.number('learningRate must be a number').gt(0, 'learningRate must be > 0').default(0.01),
    seed: z.int('seed must be an integer').default(0),
    /** Inference: the diagonal plus the topK key blocks of highest gate probability... */
    topK: z.int('topK must be an integer').min(0, 'topK must be at least 0').optional(),
    /** ...or the diagonal plus every key block of gate probability >= threshold. */
    threshold: unitOpen('threshold').optional(),
    causal: causalField,
  })
  .refine((c) => c.topK === undefined || c.threshold === undefined, { message: 'give either topK or threshold, not both', path: ['threshold'] })
  .transform((c) => (c.topK === undefined && c.threshold === undefined ? { ...c, threshold: 0.05 } : c));
export type SeerConfig = z.output<typeof seerConfigSchema>;

/** Mustafar: per-token magnitude pruning of K and V into the bitmap cache. */
export const mustafarConfigSchema = z
  .strictObject({
    /** Fraction of each K and V row pruned (default 0.5), unless kSparsity / vSparsity say otherwise. */
    sparsity: sparsity('sparsity').default(0.5),
    kSparsity: sparsity('kSparsity').optional(),
    vSparsity: sparsity('vSparsity').optional(),
  })
  .transform((c) => ({ kSparsity: c.kSparsity ?? c.sparsity, vSparsity: c.vSparsity ?? c.sparsity }));
export type MustafarConfig = z.output<typeof mustafarConfigSchema>;

export const spargeMethod: BlockAttentionMethod<typeof spargeConfigSchema> = {
  kind: 'attention',
  name: 'sparge',
  describe: 'SpargeAttn-style block prediction: keep the key blocks holding cdfThreshold of the pooled attention mass',
  paper: 'Zhang et al. 2025, SpargeAttn: Accurate Sparse Attention Accelerating Any Model Inference',
  differs: [
    'one square block size for queries and keys (the paper\'s kernels use different ones)',
    'no second, in-kernel stage: the paper\'s online softmax-aware filter (the λ threshold inside kept tiles) belongs to a kernel, not to the mask',
  ],
  schema: spargeConfigSchema,
  target: 'block-mask',
  predict: (c, { shape, q, k }) => spargePredict(shape, q, k, c),
};

export const topKBlocksMethod: BlockAttentionMethod<typeof topKBlocksConfigSchema> = {
  kind: 'attention',
  name: 'topk-blocks',
  describe: 'The diagonal plus the k key blocks of highest pooled score per query block',
  paper: 'none (this library\'s own method): the diagonal plus the k key blocks of highest pooled score, a baseline for the predicted methods',
  differs: [],
  schema: topKBlocksConfigSchema,
  target: 'block-mask',
  predict: (c, { shape, q, k }) => topKBlocks(shape, q, k, c),
};

export const seerMethod: BlockAttentionMethod<typeof seerConfigSchema> = {
  kind: 'attention',
  name: 'seer',
  describe: 'SeerAttention-style learned block gate (trained by distillation with trainSeerGate from /tfjs)',
  paper: 'Gao et al. 2024, SeerAttention: Learning Intrinsic Sparse Attention in Your LLMs',
  differs: [
    'the pooled inputs get no position encoding of their own',
    'the gate is trained on q and k samples handed to it, one layer at a time, not inside the model\'s forward pass',
    'the distillation loss is KL only (no BCE variant)',
    'the always-kept diagonal block is a choice of this package',
  ],
  schema: seerConfigSchema,
  target: 'block-mask',
  needs: ['gate'],
  predict(c, { shape, q, k }, context) {
    const gate = context?.gate;
    if (gate === undefined) throw new ArgumentError('seer: predict needs a trained gate (context.gate, from trainSeerGate in @sparse/attention/tfjs)');
    if (gate.blockSize !== c.blockSize) throw new ArgumentError(`seer: the gate was trained with blockSize ${gate.blockSize}, the config says ${c.blockSize}`);
    return seerPredict(gate, shape, q, k, c.topK !== undefined ? { topK: c.topK, causal: c.causal } : { threshold: c.threshold!, causal: c.causal });
  },
};

export const mustafarMethod: KVAttentionMethod<typeof mustafarConfigSchema> = {
  kind: 'attention',
  name: 'mustafar',
  describe: 'Mustafar: per-token magnitude pruning of the KV cache, stored as bitmaps and packed values',
  paper: 'Joo et al. 2025, Mustafar: Promoting Unstructured Sparsity for KV Cache Pruning in LLM Inference',
  differs: [
    'every token is pruned as it is appended: no dense window of recent tokens (a caller wanting one holds those tokens apart)',
  ],
  schema: mustafarConfigSchema,
  target: 'kv-cache',
  createCache: (c, { kvHeads, headDim }) => new BitmapKVCache({ kvHeads, headDim, kSparsity: c.kSparsity, vSparsity: c.vSparsity }),
};

const BUILTINS: AttentionMethod[] = [spargeMethod, topKBlocksMethod, seerMethod, mustafarMethod] as unknown as AttentionMethod[];

/** Every registered attention method by name. */
export const attentionMethods: Registry<AttentionMethod> = createRegistry<AttentionMethod>({
  kind: 'attention',
  builtins: BUILTINS,
  check(def) {
    if (def.target === 'block-mask') {
      if (typeof def.predict !== 'function') throw new ArgumentError(`register attention: '${def.name}' needs a predict function`);
    } else if (def.target === 'kv-cache') {
      if (typeof def.createCache !== 'function') throw new ArgumentError(`register attention: '${def.name}' needs a createCache function`);
    } else {
      throw new ArgumentError(`register attention: '${(def as { name: string }).name}' needs target 'block-mask' or 'kv-cache'`);
    }
  },
});

/** Adds a method under its (new, kebab-case) name; returns a function that removes it again. */
export function registerAttentionMethod<S extends z.ZodType>(def: AttentionMethod<S>): () => void {
  return attentionMethods.register(def as unknown as AttentionMethod);
}

/** The method registered under `name`; an unknown name throws UnknownNameError with the closest name. */
export function getAttentionMethod(name: string): AttentionMethod {
  return attentionMethods.get(name);
}

/** Looks a block method up, validates `config` and predicts the block mask of one layer's q and k. */
export function predictBlockMask(method: string, config: unknown, input: QKInput, context?: PredictContext): DynamicBlockMask {
  const def = getAttentionMethod(method);
  if (def.target !== 'block-mask') throw new ArgumentError(`attention method '${method}' builds a KV cache, not a block mask`);
  return def.predict(parseConfig(def.schema, config, method) as never, input, context);
}

/** Looks a kv-cache method up, validates `config` and creates an empty cache. */
export function createKVCache(method: string, config: unknown, dims: { kvHeads: number; headDim: number }): BitmapKVCache {
  const def = getAttentionMethod(method);
  if (def.target !== 'kv-cache') throw new ArgumentError(`attention method '${method}' predicts block masks, not a KV cache`);
  return def.createCache(parseConfig(def.schema, config, method) as never, dims);
}
