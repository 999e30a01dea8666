// What every stage gets: the shared context, its spec and index, and where a resumed run continues.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError, closestNames, Random, tensor, type Float32Tensor } from '@sparse/tensor';
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

/** Whether a target (a role such as 'mlp.up', a weight name, or a name suffix after a '.') names the layer. */
export function targetMatches(l: LinearInfo, t: string): boolean {
  return l.role === t || l.name === t || l.name.endsWith(`.${t}`) || l.name === `${t}.weight` || l.name.endsWith(`.${t}.weight`);
}

/** One message per target that matches no layer (with the roles there are, and the closest role). */
export function unmatchedTargets(all: LinearInfo[], targets: readonly string[]): string[] {
  const roles = [...new Set(all.map((l) => l.role))];
  return targets
    .filter((t) => !all.some((l) => targetMatches(l, t)))
    .map((t) => {
      const near = closestNames(t, roles, 1);
      return `'${t}' matches no linear layer${near.length ? ` (did you mean '${near[0]}'?)` : ''} (roles: ${roles.join(', ')}; or give weight names such as ${all[0]?.name ?? '...'})`;
    });
}

/** A stage's `targets` name no layer of the model. */
export class TargetsError extends ArgumentError {
  constructor(message: string) {
    super(message);
    this.name = 'TargetsError';
  }
}

/** Linear layers selected by `targets`: roles ('mlp.up'), exact weight names, or name suffixes after a '.'. */
export function selectLinears(all: LinearInfo[], targets: readonly string[] | undefined, where: string): LinearInfo[] {
  if (targets === undefined) return all;
  const bad = unmatchedTargets(all, targets);
  if (bad.length) throw new TargetsError(`${where}.targets: ${bad[0]}`);
  return all.filter((l) => targets.some((t) => targetMatches(l, t)));
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

/** A label as a file or folder name: letters, digits, '.', '_' and '-'. */
export function fileNameOf(label: string): string {
  return label.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * The name a stage's exports go under (exports/adapters/<name>/, exports/sft/<name>.safetensors):
 * its label as a file name, with `-stage<index>` appended when another stage's label gives the same
 * name (two stages named alike, or 'a b' and 'a_b'), so no stage's files overwrite another's.
 */
export function exportNameOf(stages: readonly StageSpec[], index: number): string {
  const names = stages.map((s, i) => fileNameOf(stageLabel(s, i)).toLowerCase());
  const own = fileNameOf(stageLabel(stages[index]!, index));
  // compared case-insensitively: 'LoRA' and 'lora' are one folder on macOS and Windows
  const clash = names.some((n, i) => i !== index && n === own.toLowerCase());
  return clash ? `${own}-stage${index}` : own;
}
