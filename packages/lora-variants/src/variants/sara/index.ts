// The public exports of 'sara': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { saraConfigSchema } from './config.js';
export type { SaRAConfig, SaRAConfigInput } from './config.js';
export { nuclearNorm, saraReselect, saraVariant } from './variant.js';
