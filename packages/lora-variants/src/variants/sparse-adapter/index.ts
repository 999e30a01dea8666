// The public exports of 'sparse-adapter': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { sparseAdapterConfigSchema } from './config.js';
export type { SparseAdapterConfig, SparseAdapterConfigInput } from './config.js';
export { sparseAdapterFactors, sparseAdapterVariant } from './variant.js';
export { activate, bottleneckTerm, BOTTLENECK_UNMERGEABLE } from './bottleneck.js';
export type { BottleneckActivation } from './bottleneck.js';
