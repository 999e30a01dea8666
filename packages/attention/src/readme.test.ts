import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README examples run against the built dist, as a user would import it.
describe('README example', () => {
  it('runs and prints the expected results', () => {
    const [result] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(result!.stdout).toContain('tiles per side: 16');
    expect(result!.stdout).toContain('sees a sink: true sees far back: false');
    expect(result!.stdout).toContain('computed tiles: 58 of 256');
    expect(result!.stdout).toContain('spec equals the composition: true');
    expect(result!.stdout).toContain('refused: attention: invalid config: and.1.dilation: dilation is required');
    expect(result!.stdout).toContain('cdfThreshold 1 is dense: true 0.9 keeps under a third: true');
    expect(result!.stdout).toContain('output rows: 512');
    expect(result!.stdout).toContain('kv sparsity: 0.703 bytes vs dense: 0.336');
  });
});
