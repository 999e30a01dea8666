export { addSeededDirection, MeZO, mezoStep, smallMagnitudeMask } from './mezo.js';
export type { MezoLoss, MezoMasks, MezoOptions, MezoStepOptions, MezoStepResult } from './mezo.js';
export { mezoConfigSchema, sparseMezoConfigSchema } from './config.js';
export type { MezoConfig, SparseMezoConfig } from './config.js';
