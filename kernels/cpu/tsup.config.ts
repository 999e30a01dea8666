import { sparsePackage } from '@sparse/config/tsup';

export default {
  ...sparsePackage({
    entry: { index: 'src/index.ts', tfjs: 'src/tfjs.ts', 'select-backend': 'src/select-backend.ts' },
    platform: 'node',
    external: [/^@tensorflow\//, /^@sparse\//, /^node:/],
  }),
  // The loader finds the addon relative to its own file: import.meta.url in the CJS build too.
  shims: true,
};
