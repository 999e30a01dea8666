// What every stage gets: the shared context, its spec and index, and where a resumed run continues.

import * as tf from '@tensorflow/tfjs-core';
import { Random, tensor, type Float32Tensor } from '@sparse/tensor';
import type { LinearInfo } from '../model/types.js';
import type { StageSpec } from '../recipe/schema.js';
import type { RunContext } from '../run/context.js';
import type { CheckpointContent } from '../run/checkpoint.js';

export interface StageResume {
  step: number;
  stageState?: Record<string, unknown>;
  optimizer?: CheckpointContent['optimizer'];
}

export interface StageArgs<S extends StageSpec = StageSpec> {
  ctx: RunContext;
  stage: S;
  index: number;
  label: string;
  resume?: StageResume;
  /** distill stages: the index of the stage whose snapshot is the teacher (-1: the initial model). */
  teacher?: number;
  /** Saves a checkpoint positioned inside this stage. */
  checkpoint: (step: number, stageState: Record<string, unknown>, optimizer?: CheckpointContent['optimizer']) => Promise<void>;
}

export interface StageOutcome {
  summary?: string;
}

/** The label a stage is shown under. */
export function stageLabel(stage: StageSpec, index: number): string {
  if (stage.name) return stage.name;
  const method = 'method' in stage ? `:${stage.method}` : '';
  return `${stage.stage}${method}#${index}`;
}

/** Linear layers selected by `targets`: roles ('mlp.up'), exact weight names, or name suffixes after a '.'. */
export function selectLinears(all: LinearInfo[], targets: readonly string[] | undefined, where: string): LinearInfo[] {
  if (targets === undefined) return all;
  const hit = (l: LinearInfo, t: string) => l.role === t || l.name === t || l.name.endsWith(`.${t}`) || l.name === `${t}.weight` || l.name.endsWith(`.${t}.weight`);
  const out = all.filter((l) => targets.some((t) => hit(l, t)));
  for (const t of targets) {
    if (!all.some((l) => hit(l, t))) {
      const roles = [...new Set(all.map((l) => l.role))].join(', ');
      throw new Error(`${where}.targets: '${t}' matches no linear layer (roles: ${roles}; or give weight names such as ${all[0]?.name ?? '...'})`);
    }
  }
  return out;
}

/** A tfjs variable's values as a core float32 tensor (a copy). */
export function coreOf(v: tf.Tensor): Float32Tensor {
  return tensor(Float32Array.from(v.dataSync() as Float32Array), [...v.shape]);
}

export function assignValues(v: tf.Variable, data: Float32Array): void {
  tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
}

/** The batch sampler of a stage: seeded by recipe seed and stage index, or restored from a checkpoint. */
export function stageRng(args: StageArgs, label = 'batches'): Random {
  const saved = args.resume?.stageState?.[label];
  if (saved !== undefined) return Random.fromState(saved as ReturnType<Random['state']>);
  return new Random(args.ctx.recipe.seed).fork(`stage-${args.index}`).fork(label);
}

/** Token windows length for the model. */
export function windowLength(args: StageArgs, tokens: Int32Array): number {
  return Math.min(args.ctx.model.spec.ctx, tokens.length - 1);
}
