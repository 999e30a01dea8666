// IST (Yao et al. 2024, "Layer-wise Importance Matters: Less Memory for Better Performance in PEFT of
// LLMs") in adapt stages: the transformer blocks of the targeted layers are IST's layers. `istSampler`
// is the part every stage shares (the scores of LayerImportance, the seeded stream the probe batches
// come from, the blocks the last step updated, their checkpointable state and the `ist` events); the
// stage says how a probe's loss is measured (its modules scaled down) and how a step trains only the
// drawn blocks. sft (config.ist) scales its sparse deltas; the LoRA-family stages (the stage field
// `ist`) scale each suppressed layer's adapter contribution (ΔW, the bias change, or the output term),
// as the paper does, with `suppressedHooks`.

import { LayerImportance, type ISTConfig, type LayerImportanceState } from '@sparse/lora-variants';
import type { AdapterModel } from '@sparse/lora-variants/tfjs';
import { Random, type RandomState } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { sampleBatch, type Batch } from '../../data/dataset.js';
import type { ForwardHooks, LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import { windowLength, type StageArgs } from '../../stages/common.js';
import type { NamedAdam } from '../../train/adam.js';
import type { StageIssue } from '../types.js';

/** What a checkpoint inside an IST stage carries (its stage state's `ist`). */
export interface ISTState {
  importance: LayerImportanceState;
  probe: RandomState;
  /** The blocks the last step updated. */
  updated: number[];
}

/** The loss of `batch` with the modules of the `suppressed` layers scaled by the config's suppression (no gradients). */
export type ProbeLoss = (batch: Batch, suppressed: ReadonlySet<string>) => number;

export interface ISTSampler {
  /** The transformer blocks of the targeted layers, ascending (IST's layer l is blocks[l]). */
  readonly blocks: readonly number[];
  /** The blocks the last step updated (empty before the stage's first step). */
  readonly updated: readonly number[];
  /** Blocks updated per step: max(1, ⌊update · blocks⌋). */
  readonly perStep: number;
  /**
   * Before step `step` (1-based): when an importance update is due, draws the suppression sets and one
   * batch from the probe stream, measures each set's loss with `probeLoss`, learns from them and logs an
   * `ist` event; then draws the blocks this step updates. Returns the names of their layers.
   */
  beforeStep(step: number, probeLoss: ProbeLoss): ReadonlySet<string>;
  /** The names of the layers of the given blocks. */
  layersOf(blocks: readonly number[]): ReadonlySet<string>;
  state(): ISTState;
}

/**
 * IST over the blocks of `layers` for adapt stage `args` with config `cfg`: the scores draw from the
 * stage's 'ist' stream, the probe batches (batch windows of the stage's data) from 'ist-probe'; a
 * resumed stage continues from its checkpoint's `ist` state.
 */
export function istSampler(args: StageArgs<StageOf<'adapt'>>, layers: readonly LinearInfo[], cfg: ISTConfig): ISTSampler {
  const { ctx, stage, index, label } = args;
  const blocks = [...new Set(layers.map((l) => l.block))].sort((a, b) => a - b);
  const root = new Random(ctx.recipe.seed).fork(`stage-${index}`);
  const importance = new LayerImportance(blocks.length, cfg, root.fork('ist'));
  let probe = root.fork('ist-probe');
  let updated: number[] = [];
  const saved = args.resume?.stageState?.ist as ISTState | undefined;
  if (saved) {
    importance.load(saved.importance);
    probe = Random.fromState(saved.probe);
    updated = [...saved.updated];
  }
  const data = (stage.data === 'shifted' ? ctx.data.shifted() : ctx.data.main).train;
  const len = windowLength(args, data);
  const layersOf = (set: readonly number[]) => new Set(layers.filter((l) => set.includes(l.block)).map((l) => l.name));
  ctx.log.say(`${label}: IST over ${blocks.length} blocks: ${importance.updated} updated per step, scores learned every ${cfg.every} steps from ${cfg.probes} probes suppressing ${importance.suppressed}`);
  return {
    blocks,
    get updated() {
      return updated;
    },
    perStep: importance.updated,
    beforeStep(step, probeLoss) {
      if (importance.learnsBefore(step)) {
        const sets = importance.sampleProbes();
        const b = sampleBatch(data, stage.batch, len, probe);
        const losses = sets.map((set) => probeLoss(b, layersOf(set.map((i) => blocks[i]!))));
        importance.learn(sets, losses);
        ctx.log.event({ event: 'ist', stage: index, label, step: step - 1, probes: sets.map((s) => s.map((i) => blocks[i]!)), losses, scores: Array.from(importance.scores) });
      }
      updated = importance.sampleUpdate().map((i) => blocks[i]!);
      return layersOf(updated);
    },
    layersOf,
    state: () => ({ importance: importance.state(), probe: probe.state(), updated: [...updated] }),
  };
}

/**
 * Forward hooks that scale the adapter contribution of the `suppressed` layers by `scale`: their weight
 * becomes W + scale · (W' − W) (W' the adapted weight `hooks` gives, so ΔW as the training forward sees
 * it, through the base mask), their bias b + scale · (b' − b) (a variant with a bias part), and an output
 * term (a bottleneck adapter) is added times `scale`. Every other layer and hook is `hooks`' own.
 */
export function suppressedHooks(hooks: ForwardHooks, adapter: AdapterModel, linears: readonly LinearInfo[], suppressed: ReadonlySet<string>, scale: number): ForwardHooks {
  // a bias parameter -> its layer's weight, for the layers whose bias the adapter may change
  const biasOf = new Map(linears.filter((l) => l.bias !== undefined && suppressed.has(l.name)).map((l) => [l.bias!, l.name]));
  const scaled = (p: tf.Tensor, adapted: tf.Tensor) => (adapted === p ? p : tf.add(p, tf.mul(tf.sub(adapted, p), scale)));
  return {
    ...hooks,
    weight: (name, p) => {
      const adapted = hooks.weight?.(name, p) ?? p;
      return suppressed.has(name) || biasOf.has(name) ? scaled(p, adapted) : adapted;
    },
    linearProduct(this: ForwardHooks, info: LinearInfo, x: tf.Tensor2D): tf.Tensor2D | undefined {
      const term = suppressed.has(info.name) ? adapter.outputTerm(info.name, x) : null;
      if (term === null) return hooks.linearProduct?.call(this, info, x);
      const p = adapter.weights[info.name]!;
      return tf.add(tf.matMul(x, this.weight?.(info.name, p) ?? p, false, true), tf.mul(term, scale)) as tf.Tensor2D;
    },
  };
}

/**
 * IST in a LoRA-family adapt stage (the stage field `ist`): each step only the adapter variables of the
 * drawn blocks are in `variables`, the map the optimizer reads after each beforeStep, so the others get
 * no gradient (tf.variableGrads is given only the drawn ones: the frozen blocks' adapter gradients are
 * never computed) and no Adam update (their values and moments stay as they are). Adam counts each
 * tensor's own updates for its bias correction (PyTorch's per-parameter step): a step a key sat out is
 * added to its NamedAdam reset point, so t − since counts the steps that updated it.
 */
export function adapterIST(
  args: StageArgs<StageOf<'adapt'>>,
  cfg: ISTConfig,
  all: ReadonlyMap<string, tf.Variable>,
  variables: Map<string, tf.Variable>,
): {
  /** Before step `step`: the Adam bookkeeping of the last step, then `variant` (the variant's own hooks), then the probes and the draw. */
  beforeStep: (step: number, optimizer: NamedAdam, variant?: () => void) => void;
  state: () => ISTState;
  /** Blocks in all, and drawn per step. */
  blocks: number;
  perStep: number;
} {
  const { ctx, label } = args;
  const adapter = ctx.adapter!.model;
  const linears = ctx.linears();
  const layers = linears.filter((l) => l.name in adapter.weights);
  const layerOf = new Map<tf.Variable, string>();
  for (const l of layers) for (const v of Object.values(adapter.layerVariables(l.name))) layerOf.set(v, l.name);
  const keysOf = new Map<string, string[]>(layers.map((l) => [l.name, []]));
  for (const [k, v] of all) {
    const layer = layerOf.get(v);
    if (layer === undefined) throw new Error(`${label}: ist: trained variable '${k}' belongs to no adapted layer, so it has no block to sample`);
    keysOf.get(layer)!.push(k);
  }
  const sampler = istSampler(args, layers, cfg);
  let current: ReadonlySet<string> = sampler.layersOf(sampler.updated);
  const probeLoss: ProbeLoss = (b, suppressed) => {
    const training = adapter.training;
    // a probe measures the loss: no dropout-like draws, nothing a training forward counts
    adapter.training = false;
    try {
      return tf.tidy(() => {
        const hooks = suppressedHooks(ctx.hooks(), adapter, linears, suppressed, cfg.suppression);
        return ctx.model.loss(tf.tensor2d(b.inputs, [b.batch, b.len], 'int32'), tf.tensor2d(b.targets, [b.batch, b.len], 'int32'), hooks).dataSync()[0]!;
      });
    } finally {
      adapter.training = training;
    }
  };
  return {
    beforeStep(step, optimizer, variant) {
      // the keys the last step left out: that step does not count toward their bias correction (none
      // before the stage's first step, or after a checkpoint that carried no IST state)
      if (step > 1 && current.size > 0) {
        const since = optimizer.resets();
        const frozen = layers.filter((l) => !current.has(l.name)).flatMap((l) => keysOf.get(l.name)!);
        optimizer.setResets(Object.fromEntries(frozen.map((k) => [k, (since[k] ?? 0) + 1])));
      }
      variant?.();
      current = sampler.beforeStep(step, probeLoss);
      variables.clear();
      for (const [k, v] of all) if (current.has(layerOf.get(v)!)) variables.set(k, v);
    },
    state: () => sampler.state(),
    blocks: sampler.blocks.length,
    perStep: sampler.perStep,
  };
}

/** Why a zeroth-order or diff-pruning stage refuses the stage field `ist`. */
export const NO_ADAPTERS_FOR_IST = 'trains no per-layer adapters for IST to sample; the stage field ist is for the LoRA-family adapter methods (sft takes config.ist)';

/** Adapt methods that have no per-layer modules for the stage field `ist` to sample refuse it with this issue. */
export function refuseStageIST(stage: StageOf<'adapt'>, why: string): StageIssue[] {
  return stage.ist === undefined ? [] : [{ path: ['ist'], message: `'${stage.method}' ${why}` }];
}
