import { sparsePackage } from '@sparse/config/tsup';

// No tsup shims: the loader finds the addon relative to its own file through import.meta.url, which
// the CJS build gets from rollup's conversion (tsup's treeshake step) as the file's own URL.
export default sparsePackage({
  entry: { index: 'src/index.ts', tfjs: 'src/tfjs.ts', 'select-backend': 'src/select-backend.ts' },
  platform: 'node',
  external: [/^@tensorflow\//, /^@sparse\//, /^node:/],
});
