// @sparse/tensor: the shared interface of the sparse project. No Node built-ins here (see ./node).
export * from './errors.js';
export * from './limits.js';
export * from './dtype.js';
export * from './tensor.js';
export * from './layouts/index.js';
export * from './select-nm.js';
export { selectRank } from './select-rank.js';
export * from './kernels/index.js';
export * from './safetensors/index.js';
export * from './float16.js';
export * from './random.js';
export * from './linalg/index.js';
export * from './names.js';
export * from './registry.js';
