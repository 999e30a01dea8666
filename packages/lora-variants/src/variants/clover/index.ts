// The public exports of 'clover': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { cloverConfigSchema, cloverPruneConfigSchema } from './config.js';
export type { CLOVERConfig, CLOVERPruneConfig } from './config.js';
export { cloverBlocks, cloverCoupledInit, cloverVariant } from './variant.js';
export { absorbRows, attentionLayout, cloverPrune, keptRank } from './absorb.js';
export type { AttentionLayout, CloverPruneResult, HeadDecomposition, Mat64 } from './absorb.js';
