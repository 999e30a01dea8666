import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README example runs against the built dist, as a user would import it.
describe('README example', () => {
  it('runs and prints the expected results', () => {
    const [result, schemas] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(result!.stdout).toContain('density 0.25 per row');
    expect(result!.stdout).toContain('zeros 96');
    expect(result!.stdout).toContain('ERK keep 18714,6906,1000 total 26620');
    expect(result!.stdout).toContain('sparsity at 0/500/1000 0.0000/0.7875/0.9000');
    expect(result!.stdout).toContain('active 32 rewired 10 SAD 20');
    expect(schemas!.stdout).toBe('1\nfinal: final must be a number in [0, 1); end: end must be after begin\n');
  });
});
