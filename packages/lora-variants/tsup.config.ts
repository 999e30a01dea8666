import { sparsePackage } from '@sparse/config/tsup';

export default sparsePackage({
  entry: { index: 'src/index.ts', tfjs: 'src/tfjs.ts', node: 'src/node.ts' },
  external: [/^@tensorflow\//, /^@sparse\//, /^node:/, 'zod'],
});
