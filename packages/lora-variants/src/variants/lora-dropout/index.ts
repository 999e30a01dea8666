// The public exports of 'lora-dropout': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { loraDropoutConfigSchema } from './config.js';
export type { LoRADropoutConfig } from './config.js';
export { loraDropoutEnsembleForward, loraDropoutVariant, sampleLoRADropoutDelta } from './variant.js';
