// @sparse/nm: N:M semi-structured sparsity on plain Tensors. Training pieces live in @sparse/nm/tfjs.
export { isNM, nmMask } from './mask.js';
export type { IsNMOptions, NMAxis, NMCheck, NMMaskOptions, NMParams, NMViolation } from './mask.js';
export { MAX_TRANSPOSABLE_M, MAX_TRANSPOSABLE_PATTERNS, transposableNMMask, transposablePatterns } from './transposable.js';
export type { NMPatterns, TransposableOptions, TransposableResult } from './transposable.js';
export { compressNM, decompressNM, nmCompressionReport } from './compress.js';
export type { CompressNMOptions, NMCompressionReport } from './compress.js';
export { applyColumnPermutation, applyRowPermutation, DEFAULT_PERMUTATION_WORK, invertPermutation, searchChannelPermutation } from './permutation.js';
export type { PermutationSearchOptions, PermutationSearchProgress, PermutationSearchResult, PermutationSearchStop } from './permutation.js';
export { rescaleKeptRows, rowNorms } from './scaling.js';
export type { RescaleRowsOptions, RescaleRowsResult } from './scaling.js';
export { constantFanInRegrow } from './fanin.js';
export type { ConstantFanInOptions, ConstantFanInResult } from './fanin.js';
export { patchGrid, patchMask, patchSparsity } from './patch.js';
export type { PatchGrid, PatchTiling } from './patch.js';
export { nmActivations } from './activation.js';
export type { NMActivationResult } from './activation.js';
export { searchStripeGroupPermutation, stripePartitionCount } from './stripe.js';
export type { StripeGroupSearchOptions, StripeGroupSearchResult } from './stripe.js';
