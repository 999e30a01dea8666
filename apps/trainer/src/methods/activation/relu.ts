// ReLU substitution (Mirzadeh et al., "ReLU Strikes Back"): the MLP's smooth nonlinearity (GELU, or the
// SiLU gate of a gated MLP) is replaced by ReLU, or squared ReLU, so most MLP activations become exact
// zeros; the stage's fine-tuning steps are the recovery training. Departs from the paper: only its
// first stage (the MLP nonlinearity); the ReLUs it also inserts after the normalization layers are not
// added. The model keeps its weights; its spec records the new nonlinearity, so checkpoints, exports
// (Hugging Face activation_function / hidden_act) and the decoder use it.

import { ArgumentError } from '@sparse/tensor';
import { z } from 'zod';
import { createModel } from '../../model/index.js';
import type { ModelSpec } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { StageArgs, StageOutcome } from '../../stages/common.js';
import type { TrainerMethod } from '../types.js';
import { calibrationBatches } from '../../stages/calibration.js';
import { exactDensity } from './density-loss.js';
import { fineTuneWithActivation } from './sparsify.js';

export const reluConfigSchema = z.strictObject({
  /** relu: max(x, 0); relu2: max(x, 0)² (squared ReLU, sparser and smoother at 0). */
  kind: z.enum(['relu', 'relu2']).default('relu'),
});

export const reluMethod: TrainerMethod<'activation'> = {
  kind: 'activation',
  name: 'relu',
  describe: 'ReLU substitution (Mirzadeh et al.): the MLP nonlinearity becomes ReLU or squared ReLU, then the stage\'s steps recover; the paper\'s extra ReLUs after the norms are not added',
  paper: 'Mirzadeh et al. 2023, ReLU Strikes Back: Exploiting Activation Sparsity in Large Language Models',
  differs: [
    'only the paper\'s first stage (the MLP nonlinearity): the ReLUs it also inserts after the normalization layers are not added',
  ],
  schema: reluConfigSchema,
  from: '@sparse/trainer',
  async run(args: StageArgs<StageOf<'activation'>>): Promise<StageOutcome> {
    const { ctx, stage, label } = args;
    const { kind } = reluConfigSchema.parse(stage.config);
    if (stage.rotate) throw new ArgumentError(`${label}: rotate applies to the activation sparsifiers (top-k, teal, wina, ...), not to relu substitution`);
    const spec = ctx.model.spec as ModelSpec & { activation?: string };
    if (spec.activation !== kind) {
      const was = spec.activation ?? (spec.architecture === 'gpt' ? 'gelu' : 'silu');
      const next = createModel({ ...spec, activation: kind } as ModelSpec, { values: ctx.paramValues() });
      ctx.model.dispose();
      ctx.replaceModel(next);
      ctx.log.say(`${label}: MLP nonlinearity ${was} -> ${kind}${stage.steps === 0 ? ' (no recovery steps: expect a loss jump)' : ''}`);
      ctx.log.event({ event: 'activation', stage: args.index, label, method: 'relu', from: was, to: kind });
    }
    const tuned = await fineTuneWithActivation(args);
    // how sparse the MLP activations now are by themselves (exact zeros), on the calibration windows
    const density = exactDensity(ctx, calibrationBatches(ctx, args.index, stage.calibrationData), (s) => s.kind === 'mlp-activation');
    ctx.log.event({ event: 'activation-density', label, method: 'relu', overall: density, exact: true });
    ctx.log.say(`${label}: the MLP activations are ${(100 * (1 - density)).toFixed(1)}% exact zeros on the calibration windows`);
    return { summary: `MLP nonlinearity ${kind}${tuned}; ${(100 * (1 - density)).toFixed(1)}% of MLP activations are exact zeros` };
  },
};
