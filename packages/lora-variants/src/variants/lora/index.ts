// The public exports of 'lora' and 'sqft': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { loraConfigSchema } from './config.js';
export type { LoRAConfig, LoRAConfigInput } from './config.js';
export { loraScaling, loraVariant, sqftVariant } from './variant.js';
