import { README_RESOLUTIONS, typecheckReadmeExamples } from '@sparse/config/readme';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, packageRoot } from './testing/dist.js';

// The README examples type-check as a user's strict TypeScript project sees them (checkJs, the
// built .d.ts), with Node's module resolution and with a bundler's.
describe('README examples type-check', () => {
  let result: Record<(typeof README_RESOLUTIONS)[number], string>;
  beforeAll(() => {
    ensureDist();
    result = typecheckReadmeExamples(packageRoot);
  }, 180_000);
  it.each(README_RESOLUTIONS)('strict, moduleResolution %s', (resolution) => {
    expect(result[resolution]).toBe('');
  });
});
