import { sparseVitest } from '@sparse/config/vitest';

const base = sparseVitest();

export default {
  ...base,
  test: {
    ...base.test,
    // The /tfjs tests register tfjs-core's gradients (an application's job, see src/tfjs.ts); that module
    // is ESM with extensionless imports that Node cannot load, so vitest transforms those files instead.
    server: { deps: { inline: [/@tensorflow[\\/]tfjs-core[\\/]dist[\\/](?!tf-core)/] } },
  },
};
