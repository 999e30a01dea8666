// The public exports of 'clover': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { cloverConfigSchema } from './config.js';
export type { CLOVERConfig } from './config.js';
export { cloverVariant } from './variant.js';
