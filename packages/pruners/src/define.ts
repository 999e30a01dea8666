// Running a pruner definition: validate its config (zod, defaults filled in), then prune. Kept apart from
// the registry so method modules can use it without importing the registry that imports them.

import { ArgumentError, parseConfig } from '@sparse/tensor';
import type { z } from 'zod';
import { where } from './internal.js';
import type { PruneRequest, PruneResult, PrunerDefinition } from './types.js';

/** Parses a config with the method's schema; a bad field throws ConfigError (an ArgumentError) naming the layer and the path. */
export function parsePrunerConfig<S extends z.ZodType>(def: PrunerDefinition<S>, layer: string, config: unknown): z.output<S> {
  return parseConfig(def.schema, config, where(def.name, layer)) as z.output<S>;
}

/** Validates input.config against the definition's schema and runs it. */
export function runDefinition<S extends z.ZodType>(def: PrunerDefinition<S>, input: PruneRequest<z.input<S>>): PruneResult {
  if (typeof input !== 'object' || input === null || typeof input.name !== 'string') {
    throw new ArgumentError(`${def.name}: input must be { name, weight, stats?, mask?, config } with a string layer name`);
  }
  const config = parsePrunerConfig(def, input.name, input.config);
  return def.prune({ ...input, config });
}
