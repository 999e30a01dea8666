// The public exports of 'snell': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { snellConfigSchema } from './config.js';
export type { SNELLConfig, SNELLConfigInput } from './config.js';
export { snellAllocate, snellKeepMask, snellKept, snellKernel, snellMask, snellVariant } from './variant.js';
