// The README's method list names every registered method with its paper and departures, in the form
// provenanceLine writes them (line breaks in the README read as spaces).
import { readFileSync } from 'node:fs';
import { provenanceLine } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { variants } from './variants/registry.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');

describe('README method list', () => {
  it.each(variants.entries().map((e) => [e.name, e] as const))('%s: named, with its paper and differs line', (name, entry) => {
    expect(readme).toContain(`\`${name}\``);
    expect(readme).toContain(provenanceLine(entry));
  });
});
