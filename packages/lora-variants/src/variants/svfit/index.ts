// The public exports of 'svfit': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { svfitConfigSchema } from './config.js';
export type { SVFitConfig } from './config.js';
export { svfitVariant } from './variant.js';
