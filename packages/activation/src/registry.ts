// The activation-method registry (createRegistry from @sparse/tensor, the shape every method registry of
// the project has): each method registers once under a kebab-case name with its config schema.

import { ArgumentError, createRegistry, parseConfig, type Registry } from '@sparse/tensor';
import type { z } from 'zod';
import { catsMethod } from './methods/cats/cats.js';
import { nmActivationMethod } from './methods/nm/nm.js';
import { rSparseMethod } from './methods/r-sparse/r-sparse.js';
import { tealMethod } from './methods/teal/teal.js';
import { topKMethod } from './methods/top-k/top-k.js';
import { winaMethod } from './methods/wina/wina.js';
import { polarMethod } from './predict/polar.js';
import { sparseLoraSvdMethod } from './predict/sparselora.js';
import { lemoMethod } from './tokens/lemo.js';
import type { ActivationMethod, SiteSample, SiteSparsifier } from './types.js';

const BUILTINS: ActivationMethod[] = [
  sparseLoraSvdMethod as unknown as ActivationMethod,
  polarMethod as unknown as ActivationMethod,
  lemoMethod as unknown as ActivationMethod,
  topKMethod as unknown as ActivationMethod,
  catsMethod as unknown as ActivationMethod,
  nmActivationMethod as unknown as ActivationMethod,
  tealMethod as unknown as ActivationMethod,
  winaMethod as unknown as ActivationMethod,
  rSparseMethod as unknown as ActivationMethod,
];

/** Every registered activation method by name. */
export const activationMethods: Registry<ActivationMethod> = createRegistry<ActivationMethod>({
  kind: 'activation',
  builtins: BUILTINS,
  check(def) {
    for (const fn of ['acts', 'calibrate', 'restore'] as const) {
      if (typeof def[fn] !== 'function') throw new ArgumentError(`register activation: '${def.name}' needs a ${fn} function`);
    }
    if (!Array.isArray(def.needs)) throw new ArgumentError(`register activation: '${def.name}' needs a needs array`);
  },
});

/** Adds a method under its (new, kebab-case) name; returns a function that removes it again. */
export function registerActivationMethod<S extends z.ZodType>(def: ActivationMethod<S>): () => void {
  return activationMethods.register(def as unknown as ActivationMethod);
}

/** The method registered under `name`; an unknown name throws UnknownNameError with the closest name. */
export function getActivationMethod(name: string): ActivationMethod {
  return activationMethods.get(name);
}

/** Looks a method up, validates `config` against its schema and calibrates on the samples of the sites it acts on. */
export function calibrateActivation(method: string, config: unknown, samples: readonly SiteSample[]): SiteSparsifier[] {
  const def = getActivationMethod(method);
  const parsed = parseConfig(def.schema, config, method) as never;
  return def.calibrate(parsed, samples.filter((s) => def.acts(parsed, s.site)));
}
