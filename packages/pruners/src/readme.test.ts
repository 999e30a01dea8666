import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README example runs against the built dist, as a user would import it.
describe('README example', () => {
  it('runs and prints the expected results', () => {
    const [result] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(result!.stdout).toContain('pruners dsnot,magnitude,random,sparsegpt,structured,wanda');
    expect(result!.stdout).toContain('50% sparsegpt <= wanda <= magnitude: true');
    expect(result!.stdout).toContain('2:4 sparsegpt <= wanda <= magnitude: true');
    expect(result!.stdout).toContain('sparsity 0.5 kept 1024 zeros 1024');
  });
});
