// prune method 'global-magnitude': one |W| ranking across every targeted layer, so layers with many
// small weights lose more (globalMagnitudeMasks of @sparse/pruners).

import { applyMask, count } from '@sparse/masks';
import { globalMagnitudeConfigSchema, globalMagnitudeMasks, type GlobalMagnitudeConfig } from '@sparse/pruners';
import type { StageOf } from '../../recipe/schema.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import type { TrainerMethod } from '../types.js';

export const globalMagnitudeMethod: TrainerMethod<'prune'> = {
  kind: 'prune',
  name: 'global-magnitude',
  describe: 'magnitude pruning with one ranking across all targeted layers, so layers with many small weights lose more',
  paper: 'none (the standard data-free baseline, no one paper followed): one |W| ranking across every targeted layer',
  differs: [],
  schema: globalMagnitudeConfigSchema,
  from: '@sparse/pruners',
  run: runGlobalMagnitude,
};

async function runGlobalMagnitude(args: StageArgs<StageOf<'prune'>>): Promise<StageOutcome> {
  const { ctx, stage, index } = args;
  const cfg = stage.config as GlobalMagnitudeConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const masks = globalMagnitudeMasks(Object.fromEntries(layers.map((l) => [l.name, coreOf(ctx.model.params[l.name]!)])), { sparsity: cfg.sparsity });
  const per: string[] = [];
  for (const l of layers) {
    const m = masks[l.name]!;
    const v = ctx.model.params[l.name]!;
    assignValues(v, applyMask(m, coreOf(v)).data as Float32Array);
    ctx.setMask(l.name, m);
    per.push(`${l.name.replace(/\.weight$/, '')} ${((1 - count(m) / (l.out * l.in)) * 100).toFixed(0)}%`);
  }
  ctx.pattern = undefined;
  ctx.log.say(`${args.label}: global magnitude ${(cfg.sparsity * 100).toFixed(0)}%: ${per.join(', ')}`);
  return { summary: `global magnitude ${(cfg.sparsity * 100).toFixed(0)}% over ${layers.length} layers (${per.join(', ')})` };
}
