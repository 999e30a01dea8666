import { sparsePackage } from '@sparse/config/tsup';

// The loader finds the addon relative to its own file through import.meta.url (as in kernels-cpu).
export default sparsePackage({
  entry: { index: 'src/index.ts' },
  platform: 'node',
  external: [/^@sparse\//, /^node:/],
});
