import { sparsePackage } from '@sparse/config/tsup';

export default sparsePackage({
  entry: { index: 'src/index.ts', tfjs: 'src/tfjs.ts', schemas: 'src/schemas.ts' },
  external: [/^@tensorflow\//, /^@sparse\//, 'zod'],
});
