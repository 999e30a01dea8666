import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README examples run against the built dist, as a user would import it.
describe('README example', () => {
  it('runs and prints the expected results', () => {
    const [result] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(result!.stdout).toContain('median |a| bracketed: true');
    expect(result!.stdout).toContain('cats held-out sparsity near 0.5: true');
    expect(result!.stdout).toContain('wina <= teal: true');
    expect(result!.stdout).toContain('r-sparse < top-k: true');
  });
});
