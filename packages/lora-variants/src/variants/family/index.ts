// The LoRA family beyond plain LoRA/rsLoRA (one file per method in this folder). Each variant is
// listed here once it works; the registry adds the list to its built-ins.
import type { AdapterVariant } from '../types.js';
import { asymmetricLoraVariant } from './asymmetric.js';
import { loraSbVariant } from './lora-sb.js';
import { loraXsVariant } from './lora-xs.js';
import { spectralAdapterVariant } from './spectral.js';
import { svfitVariant } from './svfit.js';
import { cloverVariant } from './clover.js';
import { cordaVariant } from './corda.js';
import { nullLoraVariant } from './null-lora.js';
import { ssfVariant } from './ssf.js';
import { dynamicRankVariant } from './dynamic-rank.js';
import { selectiveLoraVariant } from './selective.js';
import { loraDropoutVariant } from './lora-dropout.js';

export { asymmetricLoraConfigSchema, asymmetricLoraVariant } from './asymmetric.js';
export type { AsymmetricLoraConfig } from './asymmetric.js';
export { loraXsConfigSchema, loraXsVariant } from './lora-xs.js';
export type { LoraXsConfig } from './lora-xs.js';
export { loraSbConfigSchema, loraSbVariant } from './lora-sb.js';
export type { LoraSbConfig, LoraSbConfigInput } from './lora-sb.js';
export { svfitConfigSchema, svfitVariant } from './svfit.js';
export type { SvfitConfig } from './svfit.js';
export { spectralAdapterConfigSchema, spectralAdapterVariant } from './spectral.js';
export type { SpectralAdapterConfig } from './spectral.js';
export { cloverConfigSchema, cloverVariant } from './clover.js';
export type { CloverConfig } from './clover.js';
export { cordaComponents, cordaConfigSchema, cordaVariant } from './corda.js';
export type { CordaConfig, CordaConfigInput } from './corda.js';
export { nullLoraConfigSchema, nullLoraVariant } from './null-lora.js';
export type { NullLoraConfig, NullLoraConfigInput } from './null-lora.js';
export { ssfConfigSchema, ssfVariant } from './ssf.js';
export type { SsfConfig } from './ssf.js';
export {
  activeRank,
  dynamicRankConfigSchema,
  dynamicRankScores,
  dynamicRankTrainableCount,
  dynamicRankVariant,
  pruneDynamicRank,
} from './dynamic-rank.js';
export type { DynamicRankConfig, DynamicRankScoreOptions } from './dynamic-rank.js';
export { selectiveIndicator, selectiveLoraConfigSchema, selectiveLoraVariant } from './selective.js';
export type { SelectiveLoraConfig } from './selective.js';
export { loraDropoutConfigSchema, loraDropoutEnsembleForward, loraDropoutVariant, sampleLoraDropoutDelta } from './lora-dropout.js';
export type { LoraDropoutConfig } from './lora-dropout.js';
export { inputCovariance } from './define.js';

export const familyVariants: readonly AdapterVariant<never>[] = [
  asymmetricLoraVariant,
  loraXsVariant,
  loraSbVariant,
  svfitVariant,
  spectralAdapterVariant,
  cloverVariant,
  cordaVariant,
  nullLoraVariant,
  ssfVariant,
  dynamicRankVariant,
  selectiveLoraVariant,
  loraDropoutVariant,
] as unknown as readonly AdapterVariant<never>[];
