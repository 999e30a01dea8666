// Contextual-sparsity predictors: choose a layer's active channels (MLP neurons, attention heads) from
// its input, before they are computed.
export { activationFunction, denseProduct, estimateScores, exactScores, lowRankFactors, lowRankProduct, mlpChannelScores, svdEstimator } from './estimator.js';
export type { LowRankFactors, MlpActivationKind, SVDEstimator } from './estimator.js';
export { fitLinearProbe, headNorms, magnitudes, probeOutputs } from './probe.js';
export type { LinearProbe } from './probe.js';
export { keepCount, recall, selectionMask, topRows } from './select.js';
export type { TopSet } from './select.js';
export { LayerLink } from './link.js';
export { polarConfigSchema, polarMethod } from './polar.js';
export type { PolarConfig, PolarConfigInput, PolarState } from './polar.js';
export { sparseLoraConfigSchema, sparseLoraSvdMethod } from './sparselora.js';
export type { SparseLoraConfig, SparseLoraConfigInput, SparseLoraState } from './sparselora.js';
