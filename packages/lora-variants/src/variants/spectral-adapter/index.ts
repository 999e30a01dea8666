// The public exports of 'spectral-adapter': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { spectralAdapterConfigSchema } from './config.js';
export type { SpectralAdapterConfig } from './config.js';
export { spectralAdapterVariant } from './variant.js';
