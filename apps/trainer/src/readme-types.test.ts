import { readmeTypecheckSuite } from '@sparse/config/readme';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, packageRoot } from './testing/dist.js';

// The README examples type-check as a user's strict TypeScript project sees them (checkJs, the
// built .d.ts), with Node's module resolution and with a bundler's.
readmeTypecheckSuite(packageRoot, { describe, it, expect, beforeAll }, { prepare: ensureDist, timeoutMs: 180_000 });
