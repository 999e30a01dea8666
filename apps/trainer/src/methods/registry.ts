// The trainer's method tables, one registry per stage kind (createRegistry from @sparse/tensor).
// A kind's methods are the trainer's own entries plus those derived from a package registry: every
// per-layer pruner of @sparse/pruners is a prune method, every adapter variant of
// @sparse/lora-variants with a tfjs form is an adapt method, every method of @sparse/activation an
// activation method, every method of @sparse/attention an attention method. Stage runners, recipe validation and
// `sparse-train methods` all read these tables.

import { closestNames, createRegistry, UnknownNameError, type Registry } from '@sparse/tensor';
import { pruners } from '@sparse/pruners';
import { variants } from '@sparse/lora-variants';
import { getTfForm } from '@sparse/lora-variants/tfjs';
import { activationMethods } from '@sparse/activation';
import { attentionMethods } from '@sparse/attention';
import { reluMethod } from './activation/relu.js';
import { saeMethod } from './activation/sae.js';
import { activationSparsifyMethod } from './activation/sparsify.js';
import { attentionStageMethod } from './attention/stage.js';
import { adapterMethod } from './adapt/adapter.js';
import { diffPruningMethod } from './adapt/diff-pruning.js';
import { mezoMethod, sensitiveMeZOMethod, sparseMeZOMethod } from './adapt/mezo.js';
import { sftMethod } from './adapt/sft.js';
import { squareHeadMethod } from './distill/squarehead.js';
import { densePretrainMethod } from './pretrain/dense.js';
import { cfspMethod } from './prune/cfsp.js';
import { cloverPruneMethod } from './prune/clover.js';
import { expertsMethod } from './prune/experts.js';
import { globalMagnitudeMethod } from './prune/global-magnitude.js';
import { layerwisePruneMethod } from './prune/layerwise.js';
import { acdcMethod } from './train/acdc.js';
import { adamsMethod } from './train/adams.js';
import { bdwpMethod } from './train/bdwp.js';
import { patchMethod } from './train/patch.js';
import { denseTrainMethod } from './train/dense.js';
import { dpoMethod } from './train/dpo.js';
import { explorationMethod } from './train/exploration.js';
import { gmpMethod } from './train/gmp.js';
import { hypersparseMethod } from './train/hypersparse.js';
import { impMethod } from './train/imp.js';
import { maskedTrainMethod } from './train/masked.js';
import { movementMethod } from './train/movement.js';
import { nmTrainMethod } from './train/nm.js';
import { riglMethod } from './train/rigl.js';
import { setMethod } from './train/set.js';
import { smpMethod } from './train/smp.js';
import { sriglMethod } from './train/srigl.js';
import { staticMethod } from './train/static.js';
import { swampMethod } from './train/swamp.js';
import type { AnyTrainerMethod, MethodKind, TrainerMethod } from './types.js';

type Tables = { [K in MethodKind]: Registry<TrainerMethod<K>> };

/** The trainer's own methods. Adding one: its file under methods/<kind>/ and one line here. */
const own: Tables = {
  pretrain: createRegistry<TrainerMethod<'pretrain'>>({ kind: 'pretrain', builtins: [densePretrainMethod] }),
  train: createRegistry<TrainerMethod<'train'>>({ kind: 'train', builtins: [denseTrainMethod, maskedTrainMethod, nmTrainMethod, adamsMethod, bdwpMethod, patchMethod, gmpMethod, movementMethod, smpMethod, impMethod, swampMethod, setMethod, riglMethod, sriglMethod, staticMethod, explorationMethod, acdcMethod, hypersparseMethod, dpoMethod] }),
  prune: createRegistry<TrainerMethod<'prune'>>({ kind: 'prune', builtins: [globalMagnitudeMethod, cfspMethod, expertsMethod, cloverPruneMethod] }),
  adapt: createRegistry<TrainerMethod<'adapt'>>({ kind: 'adapt', builtins: [sftMethod, diffPruningMethod, mezoMethod, sparseMeZOMethod, sensitiveMeZOMethod] }),
  distill: createRegistry<TrainerMethod<'distill'>>({ kind: 'distill', builtins: [squareHeadMethod] }),
  activation: createRegistry<TrainerMethod<'activation'>>({ kind: 'activation', builtins: [reluMethod, saeMethod] }),
  attention: createRegistry<TrainerMethod<'attention'>>({ kind: 'attention', builtins: [] }),
};

/** Methods a package registry contributes, read at lookup time so entries registered later are found too. */
const fromPackages: { [K in MethodKind]?: () => TrainerMethod<K>[] } = {
  prune: () => pruners.entries().map(layerwisePruneMethod),
  adapt: () => variants.entries().filter((v) => getTfForm(v.name) !== undefined).map(adapterMethod),
  activation: () => activationMethods.entries().map(activationSparsifyMethod),
  attention: () => attentionMethods.entries().map(attentionStageMethod),
};

/** Every method of a stage kind, sorted by name; the trainer's own entry wins a name clash. */
export function methodsOf<K extends MethodKind>(kind: K): TrainerMethod<K>[] {
  const mine = (own[kind] as Registry<TrainerMethod<K>>).entries();
  const names = new Set(mine.map((m) => m.name));
  const derived = (fromPackages[kind]?.() ?? []).filter((m) => !names.has(m.name));
  return [...mine, ...derived].sort((a, b) => a.name.localeCompare(b.name));
}

/** The method `name` of a stage kind, or undefined. */
export function findMethod<K extends MethodKind>(kind: K, name: string): TrainerMethod<K> | undefined {
  return (own[kind] as Registry<TrainerMethod<K>>).find(name) ?? methodsOf(kind).find((m) => m.name === name);
}

/** The method `name` of a stage kind; an unknown name throws UnknownNameError with the nearest names. */
export function getMethod<K extends MethodKind>(kind: K, name: string): TrainerMethod<K> {
  const m = findMethod(kind, name);
  if (m !== undefined) return m;
  const known = methodsOf(kind).map((x) => x.name);
  throw new UnknownNameError(`${kind} method`, name, closestNames(name, known), known);
}

/** Adds a trainer method (its `kind` picks the table); returns a function that removes it again. */
export function registerTrainerMethod(method: AnyTrainerMethod): () => void {
  return (own[method.kind] as Registry<AnyTrainerMethod>).register(method);
}
