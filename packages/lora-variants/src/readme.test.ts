import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README example runs against the built dist, as a user would import it.
describe('README example', () => {
  it('runs and prints the expected results', () => {
    const [result] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(result!.stdout).toBe(
      ['lora, spp and sqft registered: true', 'lora trainable 192 mask kept: true', 'spp trainable 48 mask kept: true', 'sqft trainable 192 mask kept: true', 'densified nonzeros 512 of 512', ''].join('\n'),
    );
  });
});
