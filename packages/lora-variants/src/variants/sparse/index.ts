// Sparse + low-rank adapters and sparsity-preserving adapters beyond SPP/SQFT (one file per method
// in this folder). Each variant is listed here once it works; the registry adds the list to its built-ins.
import type { AdapterVariant } from '../types.js';

export const sparseVariants: readonly AdapterVariant<never>[] = [];
