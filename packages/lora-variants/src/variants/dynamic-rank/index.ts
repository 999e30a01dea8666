// The public exports of 'dynamic-rank': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { dynamicRankConfigSchema } from './config.js';
export type { DynamicRankConfig } from './config.js';
export { activeRank, dynamicRankScores, dynamicRankTrainableCount, dynamicRankVariant, pruneDynamicRank, rankBudgetAt } from './variant.js';
export type { DynamicRankScoreOptions } from './variant.js';
