// The public exports of 'lora-xs': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { loraXsConfigSchema } from './config.js';
export type { LoraXsConfig } from './config.js';
export { loraXsVariant } from './variant.js';
