// Shared tsup preset: every publishable package builds ESM + CJS with .d.ts/.d.cts and sourcemaps.
import { defineConfig } from 'tsup';

/** @param {{ entry: Record<string,string> | string[], external?: string[], platform?: 'node'|'neutral'|'browser' }} opts */
export function sparsePackage(opts) {
  return defineConfig({
    entry: opts.entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: false,
    treeshake: true,
    target: 'es2022',
    platform: opts.platform ?? 'neutral',
    external: opts.external ?? [],
    outExtension({ format }) {
      return { js: format === 'cjs' ? '.cjs' : '.js' };
    },
  });
}
