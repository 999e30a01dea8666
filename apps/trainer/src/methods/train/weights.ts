// Training every parameter of the model: dense (pruned weights may grow back) or masked (the run's
// masks held fixed, so pruned weights stay exactly zero). Shared by pretrain/dense, train/dense and
// train/masked.

import type { StageOf } from '../../recipe/schema.js';
import type { StageArgs, StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';

/** The base may not train while an adapter is attached: the adapter was trained against it. */
export function refuseAttachedAdapter(args: StageArgs): void {
  if (args.ctx.adapter) throw new Error(`${args.label}: an adapter is attached and not merged; set merge: true on the adapt stage before training the base`);
}

export async function trainAllWeights(args: StageArgs<StageOf<'pretrain'> | StageOf<'train'>>, masked: boolean): Promise<StageOutcome> {
  const { ctx, stage } = args;
  refuseAttachedAdapter(args);
  const variables = new Map(Object.entries(ctx.model.params));
  if (masked && ctx.masks.size === 0) ctx.log.say(`${args.label}: no masks yet (nothing pruned): masked training is dense training`);
  const hooks = ctx.hooks({ maskBase: masked });
  const r = await optimize(args, stage, { variables, loss: (ids, targets) => ctx.model.loss(ids, targets, hooks) });
  if (!masked && ctx.masks.size > 0) {
    // dense training regrows pruned weights: the masks no longer describe the model
    ctx.masks.clear();
    ctx.pattern = undefined;
  }
  return { summary: r.losses.length ? `final loss ${r.losses.at(-1)!.toFixed(4)}` : 'no steps' };
}
