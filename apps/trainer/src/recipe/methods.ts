// Every method a recipe stage can name, by stage kind: the trainer's own entries and those the
// packages' registries contribute (methods/registry.ts). `sparse-train methods` prints this catalogue;
// recipe validation parses each stage's config with the method's schema.

import { METHOD_KINDS, type AnyTrainerMethod, type MethodKind } from '../methods/types.js';
import { methodsOf } from '../methods/registry.js';
import type { StageKind } from './schema.js';

export { configFields, type FieldInfo } from './fields.js';
export { findMethod, getMethod, methodsOf, registerTrainerMethod } from '../methods/registry.js';
export { METHOD_KINDS, type AnyTrainerMethod, type MethodKind, type StageIssue, type TrainerMethod } from '../methods/types.js';

/** Whether stages of this kind name a method. */
export function takesMethod(kind: StageKind): kind is MethodKind {
  return (METHOD_KINDS as readonly string[]).includes(kind);
}

/** All methods of a stage kind (or of every kind), sorted by kind then name. */
export function listMethods(kind?: StageKind): AnyTrainerMethod[] {
  const kinds = kind === undefined ? [...METHOD_KINDS].sort() : takesMethod(kind) ? [kind] : [];
  return kinds.flatMap((k) => methodsOf(k) as AnyTrainerMethod[]);
}
