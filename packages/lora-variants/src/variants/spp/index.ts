// The public exports of 'spp': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { sppConfigSchema } from './config.js';
export type { SPPConfig, SPPConfigInput } from './config.js';
export { sppVariant } from './variant.js';
