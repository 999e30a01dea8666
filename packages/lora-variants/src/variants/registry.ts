import { ArgumentError, closestNames } from '@sparse/tensor';
import { loraVariant, sqftVariant } from './lora.js';
import { sppVariant } from './spp.js';
import type { AdapterVariant } from './types.js';
import { familyVariants } from './family/index.js';
import { sparseVariants } from './sparse/index.js';

// Built-ins live in the map from the start, not registered by an importing module: the package is
// sideEffects-free, so a bundler may skip a module whose only job is registration.
const registry = new Map<string, AdapterVariant<never>>(
  [loraVariant, sqftVariant, sppVariant, ...familyVariants, ...sparseVariants].map((v) => [v.name, v as unknown as AdapterVariant<never>]),
);

/** Registers a variant under its (unique, lowercase) name; returns a function that unregisters it. */
export function registerVariant<C>(variant: AdapterVariant<C>): () => void {
  if (typeof variant?.name !== 'string' || !/^[a-z][a-z0-9_-]*$/.test(variant.name)) {
    throw new ArgumentError(`registerVariant: name must be lowercase letters, digits, '-' or '_', got ${JSON.stringify(variant?.name)}`);
  }
  if (registry.has(variant.name)) throw new ArgumentError(`registerVariant: a variant named '${variant.name}' is already registered`);
  registry.set(variant.name, variant as AdapterVariant<never>);
  return () => {
    if (registry.get(variant.name) === (variant as AdapterVariant<never>)) registry.delete(variant.name);
  };
}

/** The registered name nearest to `name` by edit distance, when it is reasonably near. */
export function closestVariantName(name: string): string | undefined {
  return closestNames(name, listVariants(), 1)[0];
}

/** The variant registered under `name`; unknown names throw ArgumentError with the closest suggestion. */
export function getVariant<C = unknown>(name: string): AdapterVariant<C> {
  const v = typeof name === 'string' ? registry.get(name) : undefined;
  if (v !== undefined) return v as unknown as AdapterVariant<C>;
  const hint = typeof name === 'string' ? closestVariantName(name) : undefined;
  throw new ArgumentError(
    `unknown adapter variant ${JSON.stringify(name)}${hint === undefined ? '' : `; did you mean '${hint}'?`} (registered: ${listVariants().join(', ')})`,
  );
}

export function listVariants(): string[] {
  return [...registry.keys()].sort();
}
