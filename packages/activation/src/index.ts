// @sparse/activation: activation sparsity on plain typed arrays. The /tfjs subpath has the training-time parts.
export type * from './types.js';
export { activationMethods, calibrateActivation, getActivationMethod, registerActivationMethod } from './registry.js';
export {
  AbsHistogram,
  ActivationMeasure,
  DEFAULT_QUANTILES,
  DensityAccumulator,
  histogramOptionsSchema,
  percentileThreshold,
  sortedAbs,
} from './measure.js';
export type { HistogramOptions, HistogramState, PercentileEstimate, SiteMeasurement, SiteReport, Summary } from './measure.js';
export { DENSE_LINEAR_ROLES, LINEAR_ROLES, SITE_ROLES, type SiteRole } from './methods/common.js';
export { catsConfigSchema, type CatsConfig, type CatsConfigInput } from './methods/cats/config.js';
export { catsMethod, catsThreshold } from './methods/cats/cats.js';
export { nmActivationConfigSchema, type NMActivationConfig, type NMActivationConfigInput } from './methods/nm/config.js';
export { nmActivationMethod } from './methods/nm/nm.js';
export { topKConfigSchema, type TopKConfig, type TopKConfigInput } from './methods/top-k/config.js';
export { topKKeep, topKMethod } from './methods/top-k/top-k.js';
export { tealConfigSchema, type TealConfig, type TealConfigInput } from './methods/teal/config.js';
export { greedyLevels, layerOutputError, tealErrorSite, tealLevels, tealMethod, thresholdAtLevel, type AllocationSite } from './methods/teal/teal.js';
export { winaConfigSchema, type WinaConfig, type WinaConfigInput } from './methods/wina/config.js';
export { columnNorms, winaErrorSite, winaMethod } from './methods/wina/wina.js';
export { rSparseConfigSchema, type RSparseConfig, type RSparseConfigInput } from './methods/r-sparse/config.js';
export { rSparseCorrection, rSparseFactors, rSparseMethod, rSparseRank } from './methods/r-sparse/r-sparse.js';
export {
  fitLinearProbe,
  headNorms,
  LayerLink,
  lowRankFactors,
  lowRankProduct,
  estimateScores,
  exactScores,
  mlpChannelScores,
  polarConfigSchema,
  polarMethod,
  probeOutputs,
  recall,
  selectionMask,
  sparseLoraConfigSchema,
  sparseLoraSvdMethod,
  svdEstimator,
  topRows,
} from './predict/index.js';
export type { LinearProbe, LowRankFactors, MlpActivationKind, PolarConfig, PolarConfigInput, PolarState, SparseLoraConfig, SparseLoraConfigInput, SparseLoraState, SVDEstimator, TopSet } from './predict/index.js';
export { attentionReceived, blockChange, deviationFromMean, keptTokens, lemoConfigSchema, lemoMethod, lemoSelection, rowNorms, selectTokens } from './tokens/index.js';
export type { LemoConfig, LemoConfigInput, LemoState, TokenSelectionOptions } from './tokens/index.js';
export { densityLossConfigSchema, densityLossValue, exactDensity, layerDensitySurrogate } from './deft/density.js';
export type { ActivationRows, DensityLossConfig, DensityLossConfigInput } from './deft/density.js';
export {
  auxKLoss,
  DeadLatentTracker,
  decodeSAE,
  denseLatents,
  encodeSAE,
  initSAE,
  meanSquaredError,
  normalizedMSE,
  normalizeDecoderColumns,
  saeConfigSchema,
  saePreActivations,
} from './sae/sae.js';
export type { SAEConfig, SAEConfigInput, SparseCode, TopKSAE } from './sae/sae.js';
export { saeFromJSON, saeFromRecord, saeToJSON, saeToRecord, type SAEHeader, type SAEJson } from './sae/io.js';
