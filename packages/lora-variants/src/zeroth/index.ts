export { addSeededDirection, MeZO, mezoStep, smallMagnitudeMask } from './mezo.js';
export type { MeZOLoss, MeZOMasks, MeZOOptions, MeZOStepOptions, MeZOStepResult } from './mezo.js';
export { mezoConfigSchema, sensitiveMeZOConfigSchema, sparseMeZOConfigSchema } from './config.js';
export type { MeZOConfig, SensitiveMeZOConfig, SparseMeZOConfig } from './config.js';
