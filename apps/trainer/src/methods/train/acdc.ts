// train method 'acdc': AC/DC (Peste et al. 2021, "AC/DC: Alternating Compressed/DeCompressed Training of
// Deep Neural Networks"). After a dense warm-up the targeted layers alternate between compressed phases,
// which train through a top-|W| mask at the target sparsity (magnitudeMasksByBudget of sparse-budgets.ts,
// per layer, global, ER or ERK), and decompressed phases, which train densely; the stage ends with a
// compressed phase that runs to its end (the fine-tune). The mask is recomputed from |W| at the start of
// every compressed phase; the masks of the last one are the run's afterwards.
//
// Phases (acdcSchedule): with S steps, W = round(warmup · S) dense steps, then compressed phases of
// C = round(compressed · S) steps alternating with decompressed ones of D = round(decompressed · S) (each at
// least 1), and the last F = round(finetune · S) steps (at least 1) compressed whatever the cycle says
// there; a compressed phase running into them simply continues.
//
// Masks never leak: compressing sets the newly masked weights to exactly 0 and zeroes their Adam moments
// (NamedAdam.resetEntries); the forward through W ⊙ M gives them a zero gradient, so they stay exactly 0 for
// the phase. Decompressing removes the targeted layers' run masks: the pruned weights train again from 0
// with zero moments. Resume is exact: the phase is a function of the step and the masks are the run's (a
// checkpoint in a decompressed phase holds none for the targeted layers).
//
// Departures from the paper: lengths are fractions of the stage rather than epochs; the optimizer is the
// trainer's Adam (the paper: SGD with momentum), whose moments are zeroed for the entries a compression masks.

import { applyMask, count } from '@sparse/masks';
import { acdcConfigSchema, type ACDCConfig } from '@sparse/masks/schemas';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { RunContext } from '../../run/context.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { optimize } from '../../stages/optimize.js';
import type { NamedAdam } from '../../train/adam.js';
import type { TrainerMethod } from '../types.js';
import { magnitudeMasksByBudget } from './sparse-budgets.js';
import { refuseAttachedAdapter } from './weights.js';

export const acdcMethod: TrainerMethod<'train'> = {
  kind: 'train',
  name: 'acdc',
  describe: 'AC/DC: dense warm-up, then compressed (top-|W| mask, recomputed each time) and dense phases alternating, ending compressed; per layer, global, ER or ERK budgets; Adam, lengths as fractions of the stage',
  paper: 'Peste et al. 2021, AC/DC: Alternating Compressed/DeCompressed Training of Deep Neural Networks',
  differs: [
    'phase lengths are fractions of the stage, not epochs',
    'Adam instead of SGD with momentum',
    'a run whose targeted layers are pruned starts dense (their masks are dropped)',
  ],
  schema: acdcConfigSchema,
  from: '@sparse/masks',
  run: (args) => {
    refuseAttachedAdapter(args);
    return trainACDC(args);
  },
};

export type ACDCPhase = 'warmup' | 'compressed' | 'decompressed';

/** Phase lengths in steps for a stage of `steps` steps. */
export interface ACDCSchedule {
  steps: number;
  warmup: number;
  compressed: number;
  decompressed: number;
  /** The last `finetune` steps are compressed. */
  finetune: number;
}

export function acdcSchedule(cfg: Pick<ACDCConfig, 'warmup' | 'compressed' | 'decompressed' | 'finetune'>, steps: number): ACDCSchedule {
  const atLeastOne = (f: number) => Math.max(1, Math.round(f * steps));
  return { steps, warmup: Math.round(cfg.warmup * steps), compressed: atLeastOne(cfg.compressed), decompressed: atLeastOne(cfg.decompressed), finetune: Math.min(steps, atLeastOne(cfg.finetune)) };
}

/** The phase of the step taken after `t` steps done (0 <= t < steps). */
export function acdcPhaseAt(s: ACDCSchedule, t: number): ACDCPhase {
  if (t >= s.steps - s.finetune) return 'compressed';
  if (t < s.warmup) return 'warmup';
  return (t - s.warmup) % (s.compressed + s.decompressed) < s.compressed ? 'compressed' : 'decompressed';
}

/** The steps done at which the phase changes to compressed or from it (the mask changes), in order. */
export function acdcSwitches(s: ACDCSchedule): { step: number; phase: 'compressed' | 'decompressed' }[] {
  const out: { step: number; phase: 'compressed' | 'decompressed' }[] = [];
  for (let t = 0; t < s.steps; t++) {
    const now = acdcPhaseAt(s, t) === 'compressed';
    const before = t > 0 && acdcPhaseAt(s, t - 1) === 'compressed';
    if (now !== before) out.push({ step: t, phase: now ? 'compressed' : 'decompressed' });
  }
  return out;
}

/** What a phase change logs (event 'acdc') and a checkpoint keeps (stage state 'acdc'). */
export interface ACDCSwitch {
  step: number;
  phase: 'compressed' | 'decompressed';
  /** Compressed: the entries each layer keeps. */
  kept?: Record<string, number>;
}

/** Removes the targeted layers' run masks (dense training from here); the pruned weights stay 0 until they train. */
function dropMasks(ctx: RunContext, layers: readonly LinearInfo[]): void {
  for (const l of layers) ctx.masks.delete(l.name);
}

async function trainACDC(args: StageArgs<StageOf<'train'>>): Promise<StageOutcome> {
  const { ctx, stage, index } = args;
  const cfg = stage.config as ACDCConfig;
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const schedule = acdcSchedule(cfg, stage.steps);
  if (!args.resume && layers.some((l) => ctx.masks.has(l.name))) {
    ctx.log.say(`${args.label}: AC/DC starts dense: the run's masks of the targeted layers are dropped (their pruned weights train again from 0)`);
    dropMasks(ctx, layers);
  }
  ctx.pattern = undefined;
  let last = args.resume?.stageState?.acdc as ACDCSwitch | undefined;
  let compressions = 0;

  const compress = (t: number, optimizer: NamedAdam) => {
    const current = layers.map((l) => ({ name: l.name, weight: coreOf(ctx.model.params[l.name]!) }));
    const next = magnitudeMasksByBudget(current, cfg.sparsity, cfg.budget, cfg.erkPowerScale);
    const kept: Record<string, number> = {};
    for (const [i, l] of layers.entries()) {
      const m = next.get(l.name)!;
      assignValues(ctx.model.params[l.name]!, applyMask(m, current[i]!.weight).data as Float32Array);
      ctx.setMask(l.name, m);
      optimizer.resetEntries(l.name, ctx.maskTensor(l.name)!);
      kept[l.name] = count(m);
    }
    compressions++;
    last = { step: t, phase: 'compressed', kept };
  };

  // the hooks read the run's masks at each forward: W ⊙ M while compressed, W while dense
  const hooks = ctx.hooks({ maskBase: true });
  const r = await optimize(args, stage, {
    variables: new Map(Object.entries(ctx.model.params)),
    loss: (ids, targets) => ctx.model.loss(ids, targets, hooks),
    // before step t + 1: the phase change due at t steps done
    beforeStep: (step, optimizer) => {
      const t = step - 1;
      const now = acdcPhaseAt(schedule, t) === 'compressed';
      const before = t > 0 && acdcPhaseAt(schedule, t - 1) === 'compressed';
      if (now === before) return;
      if (now) compress(t, optimizer);
      else {
        dropMasks(ctx, layers);
        last = { step: t, phase: 'decompressed' };
      }
      ctx.log.event({ event: 'acdc', stage: index, label: args.label, ...last! });
    },
    stageState: () => (last ? { acdc: last } : { acdc: { step: 0, phase: 'warmup' } }),
  });
  const total = layers.reduce((a, l) => a + l.out * l.in, 0);
  const kept = layers.reduce((a, l) => a + (ctx.masks.has(l.name) ? count(ctx.masks.get(l.name)!) : l.out * l.in), 0);
  const switches = acdcSwitches(schedule);
  const phases = `${switches.filter((s) => s.phase === 'compressed').length} compressed / ${switches.filter((s) => s.phase === 'decompressed').length} decompressed phases after ${schedule.warmup} dense steps`;
  return {
    summary: `AC/DC ${(cfg.sparsity * 100).toFixed(0)}% (${cfg.budget}): ${phases}, ${compressions} compression${compressions === 1 ? '' : 's'} in this process, final density ${(kept / Math.max(1, total)).toFixed(3)}, final loss ${r.losses.at(-1)?.toFixed(4) ?? '-'}`,
  };
}
