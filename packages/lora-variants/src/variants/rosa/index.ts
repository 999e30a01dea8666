// The public exports of 'rosa': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { rosaConfigSchema } from './config.js';
export type { RoSAConfig, RoSAConfigInput } from './config.js';
export { rosaVariant } from './variant.js';
