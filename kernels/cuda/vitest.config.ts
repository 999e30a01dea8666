import { sparseVitest } from '@sparse/config/vitest';

export default sparseVitest({ testTimeout: 600_000 });
