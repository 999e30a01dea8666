// The LoRA family beyond plain LoRA/rsLoRA (one file per method in this folder). Each variant is
// listed here once it works; the registry adds the list to its built-ins.
import type { AdapterVariant } from '../types.js';

export const familyVariants: readonly AdapterVariant<never>[] = [];
