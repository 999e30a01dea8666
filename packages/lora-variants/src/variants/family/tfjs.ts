// tfjs forms of the LoRA-family variants in this folder.
import type { TfAdapterForm } from '../../tfjs-forms/types.js';

export const familyTfForms: readonly TfAdapterForm[] = [];
