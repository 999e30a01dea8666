import { sparseVitest } from '@sparse/config/vitest';

export default sparseVitest();
