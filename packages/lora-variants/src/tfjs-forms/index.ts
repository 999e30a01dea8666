// Every variant that trains in tfjs, by name: the built-in forms, and those a user registers for a
// variant of their own (registerTfForm), which then trains through attachAdapters like a built-in.
import { ArgumentError, closestNames } from '@sparse/tensor';
import { builtinTfForms } from '../variants/builtins-tfjs.js';
import { variants } from '../variants/registry.js';
import type { TfAdapterForm } from './types.js';

export type { AdapterTrainingContext, AdapterTrainingHooks, TfAdapterForm, TfFormContext } from './types.js';

const forms = new Map<string, TfAdapterForm>(builtinTfForms.map((f) => [f.variant, f]));

/**
 * Registers the tfjs form of a registered variant; returns a function that removes it again. The
 * variant must be registered first (registerVariant), and may have only one form.
 */
export function registerTfForm(form: TfAdapterForm): () => void {
  if (typeof form !== 'object' || form === null) throw new ArgumentError('registerTfForm: expected { variant, effectiveWeight, ... }');
  if (typeof form.variant !== 'string' || !variants.has(form.variant)) {
    const hint = typeof form.variant === 'string' ? closestNames(form.variant, variants.list(), 1)[0] : undefined;
    throw new ArgumentError(`registerTfForm: ${JSON.stringify(form.variant)} is not a registered variant${hint ? `; did you mean '${hint}'?` : ''} (register the variant with registerVariant first)`);
  }
  if (typeof form.effectiveWeight !== 'function') throw new ArgumentError(`registerTfForm: '${form.variant}' needs effectiveWeight`);
  if (form.effectiveBias !== undefined && typeof form.effectiveBias !== 'function') throw new ArgumentError(`registerTfForm: '${form.variant}': effectiveBias must be a function`);
  if (form.frozen !== undefined && (!Array.isArray(form.frozen) || form.frozen.some((p) => typeof p !== 'string'))) {
    throw new ArgumentError(`registerTfForm: '${form.variant}': frozen must be a list of param names`);
  }
  if (form.training !== undefined && typeof form.training !== 'function') throw new ArgumentError(`registerTfForm: '${form.variant}': training must be a function returning the hooks`);
  if (forms.has(form.variant)) throw new ArgumentError(`registerTfForm: '${form.variant}' has a tfjs form already`);
  forms.set(form.variant, form);
  return () => {
    if (forms.get(form.variant) === form) forms.delete(form.variant);
  };
}

/** The tfjs form of a variant, if it has one. */
export function getTfForm(variant: string): TfAdapterForm | undefined {
  return forms.get(variant);
}

/** Variants with a tfjs form, sorted. */
export function listTfForms(): string[] {
  return [...forms.keys()].sort();
}
