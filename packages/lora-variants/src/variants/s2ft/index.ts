// The public exports of 's2ft': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { s2ftConfigSchema } from './config.js';
export type { S2FTConfig, S2FTConfigInput } from './config.js';
export { s2ftAxis, s2ftPermutation, s2ftUnits, s2ftVariant } from './variant.js';
