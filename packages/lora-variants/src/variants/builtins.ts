// Every built-in adapter variant, one import and one list entry per variant folder (./<name>/). The
// registry takes them from here; their tfjs forms are listed the same way in ./builtins-tfjs.ts, which
// the core entry never imports. The order is the registry's insertion order.
import type { AdapterVariant } from './types.js';
import { loraVariant, sqftVariant } from './lora/index.js';
import { sppVariant } from './spp/index.js';
// LoRA family (built on ./helpers/family.ts)
import { asymmetricLoRAVariant } from './asymmetric-lora/index.js';
import { loraXSVariant } from './lora-xs/index.js';
import { loraSBVariant } from './lora-sb/index.js';
import { svfitVariant } from './svfit/index.js';
import { spectralAdapterVariant } from './spectral-adapter/index.js';
import { cloverVariant } from './clover/index.js';
import { cordaVariant } from './corda/index.js';
import { nullLoRAVariant } from './null-lora/index.js';
import { ssfVariant } from './ssf/index.js';
import { dynamicRankVariant } from './dynamic-rank/index.js';
import { selectiveLoRAVariant } from './selective-lora/index.js';
import { loraDropoutVariant } from './lora-dropout/index.js';
// Sparse + low-rank and sparsity-preserving variants (most built on ./helpers/sparse.ts)
import { rosaVariant } from './rosa/index.js';
import { dseeVariant } from './dsee/index.js';
import { lorsVariant } from './lors/index.js';
import { roseloraVariant } from './roselora/index.js';
import { saraVariant } from './sara/index.js';
import { s2ftVariant } from './s2ft/index.js';
import { smtVariant } from './smt/index.js';
import { snellVariant } from './snell/index.js';
import { sparseAdapterVariant } from './sparse-adapter/index.js';
import { losiaVariant } from './losia/index.js';
import { mosaVariant } from './mosa/index.js';
import { pstVariant } from './pst/index.js';

/** The LoRA family beyond plain LoRA/rsLoRA. */
export const familyVariants: readonly AdapterVariant<never>[] = [
  asymmetricLoRAVariant,
  loraXSVariant,
  loraSBVariant,
  svfitVariant,
  spectralAdapterVariant,
  cloverVariant,
  cordaVariant,
  nullLoRAVariant,
  ssfVariant,
  dynamicRankVariant,
  selectiveLoRAVariant,
  loraDropoutVariant,
] as unknown as readonly AdapterVariant<never>[];

/** Sparse + low-rank adapters and sparsity-preserving adapters beyond SPP/SQFT. */
export const sparseVariants: readonly AdapterVariant<never>[] = [
  rosaVariant,
  dseeVariant,
  lorsVariant,
  roseloraVariant,
  saraVariant,
  s2ftVariant,
  smtVariant,
  snellVariant,
  sparseAdapterVariant,
  losiaVariant,
  mosaVariant,
  pstVariant,
].map((v) => v as unknown as AdapterVariant<never>);

/** Every built-in variant: LoRA, SQFT, SPP, then the two groups above. */
export const builtinVariants: readonly AdapterVariant<never>[] = [
  ...([loraVariant, sqftVariant, sppVariant] as unknown as AdapterVariant<never>[]),
  ...familyVariants,
  ...sparseVariants,
];
