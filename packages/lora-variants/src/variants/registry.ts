import { ArgumentError, createRegistry, type Registry } from '@sparse/tensor';
import { builtinVariants } from './builtins.js';
import type { AdapterVariant } from './types.js';

const MEMBERS = ['parseConfig', 'init', 'delta', 'forward', 'merge', 'unmerge', 'trainableCount'] as const;

/**
 * Every adapter variant by name. Built-ins live in the table from the start, not registered by an
 * importing module: the package is sideEffects-free, so a bundler may skip a module whose only job is
 * registration.
 */
export const variants: Registry<AdapterVariant<never>> = createRegistry<AdapterVariant<never>>({
  kind: 'adapter',
  builtins: [...builtinVariants],
  check(v) {
    const missing = MEMBERS.filter((m) => typeof (v as unknown as Record<string, unknown>)[m] !== 'function');
    if (missing.length > 0) throw new ArgumentError(`register adapter: '${v.name}' needs ${missing.join(', ')}`);
  },
});

/** Registers a variant under its (unique, kebab-case) name; returns a function that unregisters it. */
export function registerVariant<C>(variant: AdapterVariant<C>): () => void {
  return variants.register(variant as unknown as AdapterVariant<never>);
}

/** The variant registered under `name`; an unknown name throws UnknownNameError with the closest suggestion. */
export function getVariant<C = unknown>(name: string): AdapterVariant<C> {
  return variants.get(name) as unknown as AdapterVariant<C>;
}

export function listVariants(): string[] {
  return variants.list();
}
