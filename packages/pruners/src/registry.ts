// The pruner registry: each method registers once under a unique kebab-case name with its config
// schema (createRegistry from @sparse/tensor, the shape every method registry of the project has);
// recipes and the sparsifier look methods up by name.

import { ArgumentError, createRegistry, type Registry } from '@sparse/tensor';
import type { z } from 'zod';
import { runDefinition } from './define.js';
import { dsnotPruner } from './methods/dsnot/dsnot.js';
import { magnitudePruner } from './methods/magnitude/magnitude.js';
import { randomPruner } from './methods/random/random.js';
import { sparseGPTPruner } from './methods/sparsegpt/sparsegpt.js';
import { structuredPruner } from './methods/structured/structured.js';
import { wandaPruner } from './methods/wanda/wanda.js';
import type { PruneRequest, PruneResult, PrunerDefinition } from './types.js';

/** Every registered pruner by name (built-ins present from the start: the package is sideEffects-free). */
export const pruners: Registry<PrunerDefinition> = createRegistry<PrunerDefinition>({
  kind: 'pruner',
  builtins: [magnitudePruner, randomPruner, wandaPruner, sparseGPTPruner, dsnotPruner, structuredPruner] as unknown as PrunerDefinition[],
  check(def) {
    if (typeof def.prune !== 'function') throw new ArgumentError(`register pruner: '${def.name}' needs a prune function`);
    if (!Array.isArray(def.calibration) || def.calibration.some((c) => c !== 'columns' && c !== 'hessian')) {
      throw new ArgumentError(`register pruner: '${def.name}' needs calibration: an array of 'columns' | 'hessian'`);
    }
  },
});

/** Adds a pruner under its (new, kebab-case) name; returns a function that removes it again. */
export function registerPruner<S extends z.ZodType>(def: PrunerDefinition<S>): () => void {
  return pruners.register(def as unknown as PrunerDefinition);
}

/** The pruner registered under `name`; an unknown name throws UnknownNameError with the closest registered name. */
export function getPruner(name: string): PrunerDefinition {
  return pruners.get(name);
}

/** The registered names, sorted. */
export function listPruners(): string[] {
  return pruners.list();
}

/** Looks a method up by name, validates input.config against its schema and prunes the layer. */
export function pruneLayer(method: string, input: PruneRequest<unknown>): PruneResult {
  return runDefinition(getPruner(method), input as PruneRequest<never>);
}
