// @sparse/masks: which entries are kept. Bit-packed masks and their algebra, pruning scores on plain
// Tensors, top-k selection and layer budgets, sparsity schedules and drop-and-regrow. No tfjs here
// (gradient helpers live in @sparse/masks/tfjs).
export {
  and,
  andNot,
  applyMask,
  cloneMask,
  composeMasks,
  count,
  countPerBlock,
  countPerColumn,
  countPerRow,
  density,
  describeMask,
  equals,
  forEachKept,
  iou,
  isKept,
  maskAll,
  maskFromBitmask,
  maskFromBooleans,
  maskFromIndices,
  maskFromPredicate,
  maskFromTensor,
  maskIndices,
  maskNone,
  maskSize,
  maskToBitmask,
  maskToBooleans,
  maskToTensor,
  not,
  or,
  overlap,
  reshapeMask,
  sparseArchitectureDivergence,
  sparsity,
  validateMask,
  xor,
} from './mask.js';
export type { ApplyMaskOptions, ComposeMode, DivergenceOptions, Mask } from './mask.js';
export * from './scores/index.js';
export {
  globalTopKMasks,
  keepCount,
  maskBySparsity,
  perColumnTopKMask,
  perRowTopKMask,
  thresholdMask,
  topKMask,
  topKMaskBySparsity,
} from './select.js';
export type { GlobalBudget, Granularity, ThresholdOptions, TopKOptions } from './select.js';
export { istImportanceUpdate, layerBudgets, sampleLayers } from './budgets.js';
export type { BudgetMethod, ISTTrial, LayerBudget, LayerBudgetOptions, LayerSpec, SampleLayersOptions } from './budgets.js';
export {
  dropAndRegrow,
  dropFractionAt,
  isPruningStep,
  isRegrowStep,
  isReselectionStep,
  progressiveSchedule,
  progressiveStage,
  sparsityAt,
  validateSchedule,
} from './schedules.js';
export type { DropAndRegrowOptions, DropAndRegrowResult, ProgressiveSchedule, RegrowSchedule, SparsitySchedule } from './schedules.js';
