// train method 'srigl': SRigL (Lasby et al. 2024) at constant sparsity: RigL's drop (smallest |w|) and
// regrowth (largest dense |grad|) with every output neuron keeping the same number of inputs, through
// @sparse/nm's constantFanInRegrow (dst.ts). Without the paper's dynamic neuron ablation.

import { sriglConfigSchema } from '@sparse/masks/schemas';
import { dstMethod } from './dst.js';

export const sriglMethod = dstMethod({
  name: 'srigl',
  describe: 'SRigL: RigL with a constant fan-in (every output neuron keeps the same number of inputs; @sparse/nm), no neuron ablation',
  schema: sriglConfigSchema,
  regrowth: 'fan-in',
  from: '@sparse/nm',
});
