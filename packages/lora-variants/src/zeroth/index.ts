export { addSeededDirection, MeZO, mezoStep, smallMagnitudeMask } from './mezo.js';
export type { MezoLoss, MezoMasks, MezoOptions, MezoStepOptions, MezoStepResult } from './mezo.js';
