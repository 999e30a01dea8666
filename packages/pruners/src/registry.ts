// The pruner registry, in the manner of PEFT's register_peft_method: each method registers once under a
// unique lowercase name with its config schema; recipes and the sparsifier look methods up by name.

import { ArgumentError, closestNames } from '@sparse/tensor';
import type { z } from 'zod';
import { runDefinition } from './define.js';
import { dsnotPruner } from './methods/dsnot/dsnot.js';
import { magnitudePruner } from './methods/magnitude/magnitude.js';
import { randomPruner } from './methods/random/random.js';
import { sparseGptPruner } from './methods/sparsegpt/sparsegpt.js';
import { structuredPruner } from './methods/structured/structured.js';
import { wandaPruner } from './methods/wanda/wanda.js';
import type { PruneRequest, PruneResult, PrunerDefinition } from './types.js';

const NAME = /^[a-z][a-z0-9_-]*$/;

const builtins: PrunerDefinition[] = [magnitudePruner, randomPruner, wandaPruner, sparseGptPruner, dsnotPruner, structuredPruner] as unknown as PrunerDefinition[];

const registry = new Map<string, PrunerDefinition>(builtins.map((d) => [d.name, d]));

function checkDefinition(def: PrunerDefinition): void {
  if (typeof def !== 'object' || def === null) throw new ArgumentError('registerPruner: expected { name, description, configSchema, calibration, prune }');
  if (typeof def.name !== 'string' || !NAME.test(def.name)) {
    throw new ArgumentError(`registerPruner: name must be lowercase letters, digits, '-' or '_', starting with a letter, got ${JSON.stringify(def.name)}`);
  }
  if (typeof def.configSchema?.safeParse !== 'function') throw new ArgumentError(`registerPruner: '${def.name}' needs a zod configSchema`);
  if (typeof def.prune !== 'function') throw new ArgumentError(`registerPruner: '${def.name}' needs a prune function`);
  if (!Array.isArray(def.calibration) || def.calibration.some((c) => c !== 'columns' && c !== 'hessian')) {
    throw new ArgumentError(`registerPruner: '${def.name}' needs calibration: an array of 'columns' | 'hessian'`);
  }
}

/**
 * Adds a pruner under its name. The name must be new and lowercase (as PEFT requires); returns a function
 * that removes it again.
 */
export function registerPruner<S extends z.ZodType>(def: PrunerDefinition<S>): () => void {
  const d = def as unknown as PrunerDefinition;
  checkDefinition(d);
  if (registry.has(d.name)) throw new ArgumentError(`registerPruner: a pruner named '${d.name}' is already registered`);
  registry.set(d.name, d);
  return () => {
    if (registry.get(d.name) === d) registry.delete(d.name);
  };
}

/** The registered name closest to `name` (edit distance, case-insensitive), if any is reasonably close. */
export function closestPrunerName(name: string): string | undefined {
  return closestNames(name, registry.keys(), 1)[0];
}

/** The pruner registered under `name`; an unknown name throws ArgumentError with the closest registered name. */
export function getPruner(name: string): PrunerDefinition {
  const def = typeof name === 'string' ? registry.get(name) : undefined;
  if (def !== undefined) return def;
  const hint = typeof name === 'string' ? closestPrunerName(name) : undefined;
  throw new ArgumentError(
    `unknown pruner ${JSON.stringify(name)}${hint === undefined ? '' : `; did you mean '${hint}'?`} (registered: ${listPruners().join(', ')})`,
  );
}

/** The registered names, sorted. */
export function listPruners(): string[] {
  return [...registry.keys()].sort();
}

/** Looks a method up by name, validates input.config against its schema and prunes the layer. */
export function pruneLayer(method: string, input: PruneRequest<unknown>): PruneResult {
  return runDefinition(getPruner(method), input as PruneRequest<never>);
}
