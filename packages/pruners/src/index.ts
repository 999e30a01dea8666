// @sparse/pruners: making a layer sparse in one shot from calibration statistics. Accumulators for the
// statistics, the methods (magnitude, random, Wanda, SparseGPT, DSnoT, CFSP-style structured pruning) with
// zod config schemas, a registry by name, and a torch.ao-style sparsifier. No tfjs here (see ./tfjs).
export * from './calibration/index.js';
export type { CalibrationKind, LayerStats, PruneInput, PruneRequest, PruneResult, PrunerDefinition, ReconstructionEstimate } from './types.js';
export { DEFAULT_SPARSITY, patternOf } from './pattern.js';
export type { Pattern, PatternConfig } from './pattern.js';
export { parsePrunerConfig, runDefinition } from './define.js';
export { getPruner, listPruners, pruneLayer, pruners, registerPruner } from './registry.js';
export { reconstructionError } from './reconstruction.js';
export { globalMagnitudeMasks, magnitudePrune, magnitudePruner } from './methods/magnitude/magnitude.js';
export { globalMagnitudeConfigSchema, magnitudeConfigSchema } from './methods/magnitude/config.js';
export type { GlobalMagnitudeConfig, MagnitudeConfig, MagnitudeConfigInput } from './methods/magnitude/config.js';
export { GMP_BUDGETS, GMP_DEFAULT_SPARSITY, GMP_STRUCTURES, gmpConfigSchema, gmpGroupKeep, gmpSchedule } from './methods/magnitude/gradual.js';
export type { GMPBudget, GMPConfig, GMPConfigInput, GMPStructure } from './methods/magnitude/gradual.js';
export { MOVEMENT_BUDGETS, MOVEMENT_DEFAULTS, MOVEMENT_VARIANTS, movementConfigSchema, SMP_MASKINGS, smpConfigSchema, smpLayerKeeps } from './methods/movement/config.js';
export type { HardMovementConfig, MovementBudget, MovementConfig, MovementConfigInput, MovementVariant, SMPConfig, SMPConfigInput, SMPMasking, SoftMovementConfig } from './methods/movement/config.js';
export { impConfigSchema, LOTTERY_BUDGETS, LOTTERY_DEFAULT_REWIND, lotteryLayout, lotterySparsity, swampConfigSchema } from './methods/lottery/config.js';
export type { IMPConfig, IMPConfigInput, LotteryBudget, LotteryLayout, SWAMPConfig, SWAMPConfigInput } from './methods/lottery/config.js';
export { randomPrune, randomPruner } from './methods/random/random.js';
export { randomConfigSchema } from './methods/random/config.js';
export type { RandomConfig, RandomConfigInput } from './methods/random/config.js';
export { wandaPrune, wandaPruner } from './methods/wanda/wanda.js';
export { wandaConfigSchema } from './methods/wanda/config.js';
export type { WandaConfig, WandaConfigInput } from './methods/wanda/config.js';
export { sparseGPTPrune, sparseGPTPruner } from './methods/sparsegpt/sparsegpt.js';
export { sparseGPTConfigSchema } from './methods/sparsegpt/config.js';
export type { SparseGPTConfig, SparseGPTConfigInput } from './methods/sparsegpt/config.js';
export { dsnotPrune, dsnotPruner } from './methods/dsnot/dsnot.js';
export { dsnotConfigSchema } from './methods/dsnot/config.js';
export type { DSnoTConfig, DSnoTConfigInput } from './methods/dsnot/config.js';
export { cfspBlockDensities, cfspPrune, channelScores, groupScores, structuredPrune, structuredPruner } from './methods/structured/structured.js';
export type { BlockDensityOptions, CFSPBlock, CFSPBlockResult, CFSPGroup, CFSPGroupResult, CFSPOptions, ChannelScoreInput } from './methods/structured/structured.js';
export { cfspConfigSchema, channelMetricSchema, structuredConfigSchema } from './methods/structured/config.js';
export type { CFSPConfig, ChannelMetric, StructuredConfig, StructuredConfigInput } from './methods/structured/config.js';
export { Sparsifier } from './sparsifier.js';
export type { LayerPruneSpec, SparsifiableLayer, SparsifierConfig, SparsifierGroup, SparsifierState, StepOptions, StepReport } from './sparsifier.js';
export { expertDropsAt, expertPruneConfigSchema, expertsToDrop, expertsToKeep, renormalizedRouting, RoutingAccumulator } from './methods/experts/experts.js';
export type { ExpertPruneConfig, ExpertPruneConfigInput, RoutingAccumulatorState } from './methods/experts/experts.js';
