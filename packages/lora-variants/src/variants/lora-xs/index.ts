// The public exports of 'lora-xs': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { loraXSConfigSchema } from './config.js';
export type { LoRAXSConfig } from './config.js';
export { loraXSVariant } from './variant.js';
