// train method 'srigl': SRigL (Lasby et al. 2024) at constant sparsity: RigL's drop (smallest |w|) and
// regrowth (largest dense |grad|) with every output neuron keeping the same number of inputs, through
// @sparse/nm's constantFanInRegrow (dst.ts), with the paper's dynamic neuron ablation (`gammaSal`, 0.3 by
// default, 0 turns it off): at each update a neuron whose salient weights (those RigL's criterion keeps
// or would regrow) number fewer than max(1, ⌊γ_sal · k⌋), k the layer's fan-in before any ablation, loses
// its whole row, and the neurons left share the layer's budget B with fan-in ⌊B / neurons left⌋
// (constantFanInRegrow's file comment has the rule and where it comes from); a neuron can come back at a
// later update.

import { sriglConfigSchema } from '@sparse/masks/schemas';
import { dstMethod } from './dst.js';

export const sriglMethod = dstMethod({
  name: 'srigl',
  describe: 'SRigL: RigL with a constant fan-in (every output neuron keeps the same number of inputs; @sparse/nm) and dynamic neuron ablation (neurons with fewer than gammaSal of their fan-in salient are switched off, the others share the budget)',
  paper: 'Lasby et al. 2024, Dynamic Sparse Training with Structured Sparsity (SRigL)',
  differs: [
    'the drop ignores the inactive entries of the neurons that stay (the authors\' code may keep some at zero when an ablated neuron frees keep slots; here they are regrown by gradient)',
    'a neuron over the new fan-in (after neurons came back) keeps its largest |w|',
    'RigL\'s departures apply too',
  ],
  schema: sriglConfigSchema,
  regrowth: 'fan-in',
  from: '@sparse/nm',
});
