// The tfjs form of every built-in variant (./<name>/tfjs.ts), in the order of ./builtins.ts. Only the
// tfjs entry reaches this file (through ../tfjs-forms/index.ts): the core entry must not import tfjs-core.
import type { TfAdapterForm } from '../tfjs-forms/types.js';
import { loraForm, sqftForm } from './lora/tfjs.js';
import { sppForm } from './spp/tfjs.js';
// LoRA family
import { asymmetricLoRAForm } from './asymmetric-lora/tfjs.js';
import { loraXSForm } from './lora-xs/tfjs.js';
import { loraSBForm } from './lora-sb/tfjs.js';
import { svfitForm } from './svfit/tfjs.js';
import { spectralAdapterForm } from './spectral-adapter/tfjs.js';
import { cloverForm } from './clover/tfjs.js';
import { cordaForm } from './corda/tfjs.js';
import { nullLoRAForm } from './null-lora/tfjs.js';
import { ssfForm } from './ssf/tfjs.js';
import { dynamicRankForm } from './dynamic-rank/tfjs.js';
import { selectiveLoRAForm } from './selective-lora/tfjs.js';
import { loraDropoutForm } from './lora-dropout/tfjs.js';
// Sparse + low-rank and sparsity-preserving variants
import { rosaForm } from './rosa/tfjs.js';
import { dseeForm } from './dsee/tfjs.js';
import { lorsForm } from './lors/tfjs.js';
import { roseloraForm } from './roselora/tfjs.js';
import { saraForm } from './sara/tfjs.js';
import { s2ftForm } from './s2ft/tfjs.js';
import { smtForm } from './smt/tfjs.js';
import { snellForm } from './snell/tfjs.js';
import { sparseAdapterForm } from './sparse-adapter/tfjs.js';
import { losiaForm } from './losia/tfjs.js';
import { mosaForm } from './mosa/tfjs.js';
import { pstForm } from './pst/tfjs.js';

export const builtinTfForms: readonly TfAdapterForm[] = [
  loraForm,
  sqftForm,
  sppForm,
  asymmetricLoRAForm,
  loraXSForm,
  loraSBForm,
  svfitForm,
  spectralAdapterForm,
  cloverForm,
  cordaForm,
  nullLoRAForm,
  ssfForm,
  dynamicRankForm,
  selectiveLoRAForm,
  loraDropoutForm,
  rosaForm,
  dseeForm,
  lorsForm,
  roseloraForm,
  saraForm,
  s2ftForm,
  smtForm,
  snellForm,
  sparseAdapterForm,
  losiaForm,
  mosaForm,
  pstForm,
];
