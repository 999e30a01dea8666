// The public exports of 'null-lora': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { nullLoraConfigSchema } from './config.js';
export type { NullLoraConfig, NullLoraConfigInput } from './config.js';
export { nullLoraVariant } from './variant.js';
