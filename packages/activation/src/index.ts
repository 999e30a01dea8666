// @sparse/activation: activation sparsity on plain typed arrays. The /tfjs subpath has the training-time parts.
export type * from './types.js';
export { activationMethods, calibrateActivation, getActivationMethod, registerActivationMethod } from './registry.js';
