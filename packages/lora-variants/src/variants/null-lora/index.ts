// The public exports of 'null-lora': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { nullLoRAConfigSchema } from './config.js';
export type { NullLoRAConfig, NullLoRAConfigInput } from './config.js';
export { nullLoRAVariant } from './variant.js';
