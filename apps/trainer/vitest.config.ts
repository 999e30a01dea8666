import { sparseVitest } from '@sparse/config/vitest';

const base = sparseVitest();

export default {
  ...base,
  test: {
    ...base.test,
    // tfjs-core's gradient registrations (src/model/gradients.ts) are ESM with extensionless
    // imports that Node cannot load; vitest transforms those files instead of importing them
    server: { deps: { inline: [/@tensorflow[\\/]tfjs-core[\\/]dist[\\/](?!tf-core)/] } },
  },
};
