// The public exports of 'dsee': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { dseeConfigSchema } from './config.js';
export type { DSEEConfig, DSEEConfigInput } from './config.js';
export { dseeResidualScores, dseeVariant } from './variant.js';
