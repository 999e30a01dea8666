import { readmeTypecheckSuite } from '@sparse/config/readme';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// The README examples type-check as a user's strict TypeScript project sees them (checkJs, the
// built .d.ts), with Node's module resolution and with a bundler's.
readmeTypecheckSuite(join(dirname(fileURLToPath(import.meta.url)), '..'), { describe, it, expect, beforeAll });
