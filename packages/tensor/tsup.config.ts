import { sparsePackage } from '@sparse/config/tsup';

export default sparsePackage({
  entry: { index: 'src/index.ts', node: 'src/node.ts', tfjs: 'src/tfjs.ts', testing: 'src/testing.ts' },
  external: [/^@tensorflow\//, /^node:/],
});
