import { sparsePackage } from '@sparse/config/tsup';

export default sparsePackage({
  entry: { index: 'src/index.ts', cli: 'src/cli.ts' },
  platform: 'node',
  external: [/^@tensorflow\//, /^@sparse\//],
});
