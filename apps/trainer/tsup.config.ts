import { sparsePackage } from '@sparse/config/tsup';

const base = sparsePackage({
  entry: { index: 'src/index.ts', cli: 'src/cli.ts' },
  platform: 'node',
  external: [/^@tensorflow\//, /^@sparse\//],
});

export default {
  ...base,
  // tfjs-core's gradient registrations are bundled in: Node cannot load that ESM module from
  // tfjs-core's dist directly (see src/model/gradients.ts)
  noExternal: [/^@tensorflow\/tfjs-core\/dist\/register_all_gradients/],
};
