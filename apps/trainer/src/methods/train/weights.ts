// Training every parameter of the model: dense (pruned weights may grow back) or masked (the run's
// masks held fixed, so pruned weights stay exactly zero). Shared by pretrain/dense, train/dense and
// train/masked.

import type * as tf from '@tensorflow/tfjs-core';
import type { ForwardHooks, LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { StageArgs, StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { SparseLinears } from '../../train/sparse-linear.js';
import { choosePath } from '../../train/sparse-path.js';

/** The base may not train while an adapter is attached: the adapter was trained against it. */
export function refuseAttachedAdapter(args: StageArgs): void {
  if (args.ctx.adapter) throw new Error(`${args.label}: an adapter is attached and not merged; set merge: true on the adapt stage before training the base`);
}

/** How a stage that trains every weight through the run's masks computes: its variables, forward hooks and packed layers. */
export interface MaskedTraining {
  variables: Map<string, tf.Variable>;
  hooks: ForwardHooks;
  /** The layers on the sparse path (pass to optimize; repack after a mask change), if any. */
  sparse: SparseLinears | undefined;
}

/**
 * The dense path (forward through W ⊙ M) or, for the masked layers the stage's `path` picks, the sparse
 * path (train/sparse-path.ts); says which in the run's output and as a 'path' event. Call after the
 * stage's masks are in place; dispose `sparse` when the stage ends.
 */
export function maskedTraining(args: StageArgs<StageOf<'train'>>, layers: readonly LinearInfo[] = args.ctx.linears()): MaskedTraining {
  const { ctx, stage } = args;
  const choice = choosePath(stage.path, ctx.model.params, layers, ctx.masks);
  ctx.log.say(`${args.label}: ${choice.line}`);
  ctx.log.event({ event: 'path', stage: args.index, label: args.label, path: choice.sparse ? 'sparse' : 'dense', layers: choice.sparse?.names() ?? [], reason: choice.line });
  const base = ctx.hooks({ maskBase: true });
  const dense = new Map(Object.entries(ctx.model.params));
  return choice.sparse ? { variables: choice.sparse.variables(dense), hooks: choice.sparse.hooks(base), sparse: choice.sparse } : { variables: dense, hooks: base, sparse: undefined };
}

export async function trainAllWeights(args: StageArgs<StageOf<'pretrain'> | StageOf<'train'>>, masked: boolean): Promise<StageOutcome> {
  const { ctx, stage } = args;
  refuseAttachedAdapter(args);
  if (masked && ctx.masks.size === 0) ctx.log.say(`${args.label}: no masks yet (nothing pruned): masked training is dense training`);
  const path = masked && stage.stage === 'train' ? maskedTraining(args as StageArgs<StageOf<'train'>>) : { variables: new Map(Object.entries(ctx.model.params)), hooks: ctx.hooks({ maskBase: masked }), sparse: undefined };
  let r;
  try {
    r = await optimize(args, stage, { variables: path.variables, loss: (ids, targets) => ctx.model.loss(ids, targets, path.hooks), ...(path.sparse ? { sparse: path.sparse } : {}) });
  } finally {
    path.sparse?.dispose();
  }
  if (!masked && ctx.masks.size > 0) {
    // dense training regrows pruned weights: the masks no longer describe the model
    ctx.masks.clear();
    ctx.pattern = undefined;
  }
  return { summary: r.losses.length ? `final loss ${r.losses.at(-1)!.toFixed(4)}` : 'no steps' };
}
