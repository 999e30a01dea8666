// Calibration statistics of a layer's inputs, accumulated one activation batch at a time.
export { ColumnNormAccumulator } from './columns.js';
export type { AccumulatorOptions, ColumnNormState } from './columns.js';
export { HessianAccumulator } from './hessian.js';
export type { HessianState } from './hessian.js';
export { BlockInfluenceAccumulator } from './block.js';
export type { BlockInfluenceOptions, BlockInfluenceState, BlockMetric } from './block.js';
