export { changeMagnitudeScores, gradientScores, graspScores, magnitudeScores, snipScores, synflowScores, taylorScores } from './elementwise.js';
export type { TaylorOptions } from './elementwise.js';
export { fisherScores, GradientAccumulator, MovementAccumulator, SquaredGradientAccumulator } from './accumulators.js';
export type { AccumulatorState } from './accumulators.js';
export { randomScores } from './random.js';
export { principalWeightScores } from './principal.js';
export type { PrincipalWeightOptions } from './principal.js';
