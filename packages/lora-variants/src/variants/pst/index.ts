// The public exports of 'pst': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { pstConfigSchema } from './config.js';
export type { PSTConfig, PSTConfigInput } from './config.js';
export { PST_FROZEN, pstKeepMask, pstMask, pstScores, pstSparsityAt, pstVariant } from './variant.js';
