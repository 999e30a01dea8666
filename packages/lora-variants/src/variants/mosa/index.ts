// The public exports of 'mosa': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { mosaConfigSchema } from './config.js';
export type { MoSAConfig, MoSAConfigInput } from './config.js';
export { mosaBottleneckTerm, mosaModuleDelta, mosaModules, mosaPartition, mosaVariant } from './variant.js';
