// The README's "What each method follows" list names every method of the trainer's own (those not derived
// from a package registry, whose READMEs list theirs) with its paper and departures, in the form
// provenanceLine writes them (line breaks in the README read as spaces).
import { readFileSync } from 'node:fs';
import { activationMethods } from '@sparse/activation';
import { attentionMethods } from '@sparse/attention';
import { variants } from '@sparse/lora-variants';
import { pruners } from '@sparse/pruners';
import { provenanceLine } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { methodsOf } from './methods/registry.js';
import { METHOD_KINDS } from './methods/types.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
const fromPackages = [...pruners.entries(), ...variants.entries(), ...activationMethods.entries(), ...attentionMethods.entries()];
// a derived method shares its package entry's differs array
const own = METHOD_KINDS.flatMap((kind) => methodsOf(kind).filter((m) => !fromPackages.some((e) => e.differs === m.differs)));

describe('README: what each trainer method follows', () => {
  it('covers the trainer\'s own methods of every kind', () => {
    expect(new Set(own.map((m) => m.kind)).size).toBeGreaterThanOrEqual(5);
    expect(own.map((m) => `${m.kind}/${m.name}`)).toContain('train/rigl');
    expect(own.map((m) => `${m.kind}/${m.name}`)).not.toContain('prune/sparsegpt');
  });
  it.each(own.map((m) => [`${m.kind}/${m.name}`, m] as const))('%s: named, with its paper and differs line', (_, m) => {
    expect(readme).toContain(`\`${m.kind}\` / \`${m.name}\`: ${provenanceLine(m)}`);
  });
});
