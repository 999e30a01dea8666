// The public exports of 'selective-lora': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { selectiveLoRAConfigSchema } from './config.js';
export type { SelectiveLoRAConfig } from './config.js';
export { selectiveIndicator, selectiveLoRAVariant } from './variant.js';
