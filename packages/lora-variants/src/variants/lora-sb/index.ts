// The public exports of 'lora-sb': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { loraSBConfigSchema } from './config.js';
export type { LoRASBConfig, LoRASBConfigInput } from './config.js';
export { loraSBVariant } from './variant.js';
