// Every variant that trains in tfjs, by name.
import { sppForm, sqftForm, loraForm } from './builtin.js';
import { familyTfForms } from '../variants/family/tfjs.js';
import { sparseTfForms } from '../variants/sparse/tfjs.js';
import type { TfAdapterForm } from './types.js';

export type { TfAdapterForm, TfFormContext } from './types.js';

const forms = new Map<string, TfAdapterForm>([loraForm, sqftForm, sppForm, ...familyTfForms, ...sparseTfForms].map((f) => [f.variant, f]));

/** The tfjs form of a variant, if it has one. */
export function getTfForm(variant: string): TfAdapterForm | undefined {
  return forms.get(variant);
}

/** Variants with a tfjs form, sorted. */
export function listTfForms(): string[] {
  return [...forms.keys()].sort();
}
