import { sparsePackage } from '@sparse/config/tsup';

const base = sparsePackage({
  // bin: the `sparse-train` executable (registers peer-hooks, then loads cli); cli: the CLI itself.
  entry: { index: 'src/index.ts', cli: 'src/cli.ts', bin: 'src/bin.ts', 'peer-hooks': 'src/peer-hooks.ts' },
  platform: 'node',
  external: [/^@tensorflow\//, /^@sparse\//],
});

export default {
  ...base,
  // Types for the library entry only; the executables have none.
  dts: { entry: { index: 'src/index.ts' } },
  esbuildOptions(options: { entryPoints?: unknown }, context: { format: string }) {
    // The executables are ESM only (`bin` is dist/bin.js); CommonJS gets the library entry alone.
    if (context.format === 'cjs') options.entryPoints = { index: 'src/index.ts' };
  },
  // tfjs-core's gradient registrations are bundled in: Node cannot load that ESM module from
  // tfjs-core's dist directly (see src/model/gradients.ts). NOTICE credits the bundled code.
  noExternal: [/^@tensorflow\/tfjs-core\/dist\/register_all_gradients/],
};
