import { runReadmeExamples } from '@sparse/config/readme';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, packageRoot } from './testing/dist.js';

// The README's library example runs against the built dist, as a user would import it.
describe('README example', () => {
  beforeAll(() => ensureDist(), 180_000);

  it('runs and prints the expected results', () => {
    const [library, recipe] = runReadmeExamples(packageRoot);
    expect(library!.stdout).toContain('trained 20 steps');
    expect(library!.stdout).toContain('perplexity fell: true');
    expect(recipe!.stdout.trim()).toBe('wanda 2:4');
  });
});
