// @sparse/attention: sparse attention on plain typed arrays — static patterns and their block masks,
// dynamic block sparsity, KV-cache pruning. The /tfjs subpath has the training-time parts.
export {
  blockCount,
  blockMaskFromElements,
  elementAllowed,
  elementBitHeads,
  maskDensity,
  restrictTiles,
  setBitRange,
  tileState,
  TILE_FULL,
  TILE_PARTIAL,
  TILE_SKIP,
  toDense,
  validateBlockMask,
} from './mask.js';
export type { BlockMask, ElementMaskFn, MaskDensity, TileState } from './mask.js';
export {
  and,
  blockDiagonal,
  causal,
  dilated,
  documents,
  full,
  globalTokens,
  multiDiagonal,
  not,
  or,
  patternToDense,
  prefixSharing,
  scanClassify,
  sinks,
  slidingWindow,
  toBlockMask,
  verticalStripe,
} from './patterns.js';
export type { BlockMaskOptions, Pattern, PrefixSharing } from './patterns.js';
export { checkQKV, kernelMaskArgs, maskedAttention } from './attention.js';
export type { AttentionShape, MaskedAttentionOptions, MaskedAttentionResult } from './attention.js';
export { finishDynamic, spargePredict, topKBlocks } from './dynamic/predict.js';
export type { BlockPredictOptions, DynamicBlockMask, SpargeOptions, SpargePrediction, TopKBlocksOptions } from './dynamic/predict.js';
export { blockMeans, blockSelfSimilarity, pooledScores } from './dynamic/pool.js';
export { bitmapBreakEvenSparsity, BitmapKVCache, bitmapKVAttention, expandBitmap, keptPerRow, topMagnitude } from './kv/bitmap-cache.js';
export type { BitmapKV, BitmapKVCacheOptions } from './kv/bitmap-cache.js';
export { checkGate, seerGateLogits, seerGateProbs, seerPool, seerPredict, seerTarget } from './dynamic/seer.js';
export type { SeerGate, SeerPooled, SeerSelectOptions } from './dynamic/seer.js';
export { blockMaskFromSpec, PATTERN_NAMES, patternFromSpec, patternSpecSchema } from './spec.js';
export type { LeafPatternSpec, LeafPatternSpecInput, PatternFromSpec, PatternSpec, PatternSpecInput } from './spec.js';
export {
  attentionMethods,
  createKVCache,
  getAttentionMethod,
  mustafarConfigSchema,
  mustafarMethod,
  predictBlockMask,
  registerAttentionMethod,
  seerConfigSchema,
  seerMethod,
  spargeConfigSchema,
  spargeMethod,
  topKBlocksConfigSchema,
  topKBlocksMethod,
} from './registry.js';
export type {
  AttentionMethod,
  BlockAttentionMethod,
  KVAttentionMethod,
  MustafarConfig,
  PredictContext,
  QKInput,
  SeerConfig,
  SpargeConfig,
  TopKBlocksConfig,
} from './registry.js';
