// Recipe problems: every one names its path in the recipe (`stages[2].config.sparsity`) and what was
// expected. Validation collects them all before any work starts.

import { ArgumentError } from '@sparse/tensor';

export interface RecipeProblem {
  /** Where in the recipe, e.g. `stages[2].config.sparsity`; '' for the whole recipe. */
  path: string;
  message: string;
}

export class RecipeError extends ArgumentError {
  readonly source: string;
  readonly problems: readonly RecipeProblem[];
  constructor(source: string, problems: readonly RecipeProblem[]) {
    const lines = problems.map((p) => `  ${p.path || '(recipe)'}: ${p.message}`);
    super(`invalid recipe ${source}:\n${lines.join('\n')}`);
    this.name = 'RecipeError';
    this.source = source;
    this.problems = problems;
  }
}

/** `['stages', 2, 'config', 'sparsity']` -> `stages[2].config.sparsity`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out;
}

export function joinPath(prefix: string, rest: readonly PropertyKey[]): string {
  const tail = formatPath(rest);
  if (prefix === '') return tail;
  if (tail === '') return prefix;
  return tail.startsWith('[') ? `${prefix}${tail}` : `${prefix}.${tail}`;
}
