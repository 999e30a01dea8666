export { loraConfigSchema, loraScaling, loraVariant, sqftVariant } from './lora.js';
export type { LoraConfig, LoraConfigInput } from './lora.js';
export { sppConfigSchema, sppVariant } from './spp.js';
export type { SppConfig, SppConfigInput } from './spp.js';
export { getVariant, listVariants, registerVariant, variants } from './registry.js';
export type { AdapterState, AdapterVariant, MergeOptions, UnmergeOptions } from './types.js';
export * from './family/index.js';
export * from './sparse/index.js';
