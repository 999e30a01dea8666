// tfjs forms of the sparse + low-rank variants in this folder.
import type { TfAdapterForm } from '../../tfjs-forms/types.js';

export const sparseTfForms: readonly TfAdapterForm[] = [];
