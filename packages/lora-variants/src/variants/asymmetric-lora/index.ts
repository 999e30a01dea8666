// The public exports of 'asymmetric-lora': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { asymmetricLoRAConfigSchema } from './config.js';
export type { AsymmetricLoRAConfig } from './config.js';
export { asymmetricLoRAVariant } from './variant.js';
