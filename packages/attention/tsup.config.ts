import { sparsePackage } from '@sparse/config/tsup';

export default sparsePackage({
  entry: { index: 'src/index.ts' },
  external: [/^@tensorflow\//, /^@sparse\//, 'zod'],
});
