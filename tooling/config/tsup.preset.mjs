// Shared tsup preset: every publishable package builds ESM + CJS with .d.ts/.d.cts and sourcemaps.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineConfig } from 'tsup';

/**
 * Drops the embedded text of third-party files from the source maps under `dir`: a map keeps our own
 * sources (they are not in the tarball otherwise) but not the copies of dependencies' code that a
 * bundled module brought in. Their paths stay, with `null` content. Returns the maps it changed.
 * @param {string} dir
 * @returns {Promise<string[]>}
 */
export async function stripThirdPartySources(dir) {
  const changed = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.map')) continue;
    const file = join(dir, name);
    /** @type {{ sources?: unknown, sourcesContent?: unknown }} */
    const map = JSON.parse(await readFile(file, 'utf8'));
    const { sources, sourcesContent } = map;
    if (!Array.isArray(sources) || !Array.isArray(sourcesContent)) continue;
    let stripped = false;
    sources.forEach((source, i) => {
      if (typeof source === 'string' && /(^|[\\/])node_modules[\\/]/.test(source) && sourcesContent[i] != null) {
        sourcesContent[i] = null;
        stripped = true;
      }
    });
    if (stripped) {
      await writeFile(file, JSON.stringify(map));
      changed.push(file);
    }
  }
  return changed;
}

/** @param {{ entry: Record<string,string> | string[], external?: (string|RegExp)[], platform?: 'node'|'neutral'|'browser' }} opts */
export function sparsePackage(opts) {
  return defineConfig({
    entry: opts.entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    // Code that several entry points use goes to shared chunks, in the CJS build too (tsup splits
    // CJS only when asked): each module, and so each registry, cache and error class, exists once
    // per format instead of once per entry (a variant registered through `@sparse/x` is known to
    // `@sparse/x/node`, and `instanceof` holds for errors thrown by any entry).
    splitting: true,
    treeshake: true,
    target: 'es2022',
    platform: opts.platform ?? 'neutral',
    external: opts.external ?? [],
    outExtension({ format }) {
      return { js: format === 'cjs' ? '.cjs' : '.js' };
    },
    async onSuccess() {
      await stripThirdPartySources('dist');
    },
  });
}
