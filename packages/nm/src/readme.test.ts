import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README example runs against the built dist, as a user would import it.
describe('README example', () => {
  it('runs and prints the expected results', () => {
    const [result] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(result!.stdout).toContain('kept 64 valid true');
    expect(result!.stdout).toContain('transposable true exact >= greedy true');
    expect(result!.stdout).toContain('spmm rows 8 dense back 8x16');
    expect(result!.stdout).toContain('2:4 fp16 size 0.5625');
    expect(result!.stdout).toContain('saved format nm');
    expect(result!.stdout).toContain('kept magnitude up true');
    expect(result!.stdout).toContain('shapes 8x16 16x5');
    expect(result!.stdout).toContain('stripe groups >= swaps true');
    expect(result!.stdout).toContain('still 2:4 true fan-in 8');
    expect(result!.stdout).toContain('patch kept 104 sparsity 0.1875');
    expect(result!.stdout).toContain('activations kept 24');
  });
});
