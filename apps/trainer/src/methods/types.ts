// A method a recipe stage names: a registry entry (createRegistry's shape) whose `run` does the stage's
// work. Stage runners look the entry up and call it; nothing outside a method's own file branches on
// its name. What a method needs beyond its config (calibration data, an adapter to rebuild on resume,
// checks of stage fields) is declared here, in the entry.

import type { RegistryEntry } from '@sparse/tensor';
import type { z } from 'zod';
import type { StageOf } from '../recipe/schema.js';
import type { CheckpointContent } from '../run/checkpoint.js';
import type { RunContext } from '../run/context.js';
import type { StageArgs, StageOutcome } from '../stages/common.js';

/** The stage kinds whose stages name a method. */
export const METHOD_KINDS = ['pretrain', 'prune', 'train', 'adapt', 'distill', 'activation', 'attention'] as const;
export type MethodKind = (typeof METHOD_KINDS)[number];

/** A problem with a stage's fields that only the method can see; `path` is relative to the stage. */
export interface StageIssue {
  path: readonly PropertyKey[];
  message: string;
}

export interface TrainerMethod<K extends MethodKind = MethodKind> extends RegistryEntry<K> {
  readonly schema: z.ZodType;
  /** The package the method comes from (shown by `sparse-train methods`). */
  readonly from: string;
  /** Runs the stage; `args.stage.config` has been parsed by `schema`. */
  run(args: StageArgs<StageOf<K>>): Promise<StageOutcome>;
  /** A train method that can run masked layers on the packed sparse path (its masks keep their counts between updates); others refuse `path: sparse`. */
  readonly sparsePath?: boolean;
  /** An adapt method whose stage saves its update as sparse deltas (exports/sft/<stage>.safetensors), which a later sft stage's `compose` can add. */
  readonly sparseDelta?: boolean;
  /** Checks of the stage's other fields that depend on the method (after `schema` accepted the config). */
  checkStage?(stage: StageOf<K>): StageIssue[];
  /** The stage with the method's defaults for stage fields written out (the resolved recipe shows them). */
  resolveStage?(stage: StageOf<K>): StageOf<K>;
  /** A checkpoint taken inside this stage holds an adapter: rebuild it before `run` resumes. */
  restoreAdapter?(ctx: RunContext, stage: StageOf<K>, index: number, saved: NonNullable<CheckpointContent['adapter']>): void;
}

/** Any method, whatever its kind (the tables hold each kind apart). */
export type AnyTrainerMethod = { [K in MethodKind]: TrainerMethod<K> }[MethodKind];
