import { sparsePackage } from '@sparse/config/tsup';

export default sparsePackage({
  entry: { index: 'src/index.ts', tfjs: 'src/tfjs.ts' },
  external: [/^@tensorflow\//, /^@sparse\//, 'zod'],
});
