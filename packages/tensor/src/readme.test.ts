import { runReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The README example runs against the built dist, as a user would import it.
describe('README example', () => {
  it('runs and prints the expected results', () => {
    const [result, eigen] = runReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
    expect(result!.stdout).toContain('a^T shape 4x2');
    expect(result!.stdout).toContain('2:4 values 64 of 128');
    expect(result!.stdout).toContain('spmmNM vs dense max |diff| ok');
    expect(result!.stdout).toContain('fp16(1) = 0x3c00');
    expect(result!.stdout).toContain('names w,x w format nm');
    expect(eigen!.stdout).toContain('eigenvalues 3.000000, 1.000000, -1.000000');
    expect(eigen!.stdout).toContain('v0 0.707107, 0.707107, 0.000000');
  });
});
