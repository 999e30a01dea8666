// The public exports of 'lors': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { lorsConfigSchema } from './config.js';
export type { LoRSConfig, LoRSConfigInput } from './config.js';
export { lorsVariant } from './variant.js';
