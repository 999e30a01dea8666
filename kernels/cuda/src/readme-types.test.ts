import { README_RESOLUTIONS, typecheckReadmeExamples } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// The README examples type-check as a user's strict TypeScript project sees them (checkJs, the
// built .d.ts), with Node's module resolution and with a bundler's.
describe('README examples type-check', () => {
  let result: Record<(typeof README_RESOLUTIONS)[number], string>;
  beforeAll(() => {
    result = typecheckReadmeExamples(join(dirname(fileURLToPath(import.meta.url)), '..'));
  });
  it.each(README_RESOLUTIONS)('strict, moduleResolution %s', (resolution) => {
    expect(result[resolution]).toBe('');
  });
});
