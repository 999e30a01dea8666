// The public exports of 'lora-sb': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { loraSbConfigSchema } from './config.js';
export type { LoraSbConfig, LoraSbConfigInput } from './config.js';
export { loraSbVariant } from './variant.js';
