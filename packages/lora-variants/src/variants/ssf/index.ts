// The public exports of 'ssf': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { ssfConfigSchema } from './config.js';
export type { SSFConfig } from './config.js';
export { ssfVariant } from './variant.js';
