// The public exports of 'corda': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { cordaConfigSchema } from './config.js';
export type { CorDAConfig, CorDAConfigInput } from './config.js';
export { cordaComponents, cordaVariant } from './variant.js';
