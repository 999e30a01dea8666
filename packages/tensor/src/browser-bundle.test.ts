// The main entry must bundle for browsers with no Node built-ins (those live in ./node), and the
// bundled code must work: this builds it with esbuild exactly as a browser app would and runs it.
import { build } from 'esbuild';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

type Bundle = typeof import('./index.js');

const entry = fileURLToPath(new URL('./index.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sparse-tensor-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('browser bundle of src/index.ts', () => {
  let bundle: Bundle;

  it('builds for platform browser with nothing external (a node: import would fail the build)', async () => {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      external: [],
      metafile: true,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    const inputs = Object.keys(result.metafile!.inputs);
    expect(inputs.filter((p) => p.startsWith('node:'))).toEqual([]);
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/\brequire\(\s*["'](node:)?(fs|path|os|crypto|url|buffer|zlib|worker_threads)["']/);
    const file = join(dir, 'index.mjs');
    writeFileSync(file, code);
    bundle = (await import(/* @vite-ignore */ pathToFileURL(file).href)) as Bundle;
    expect(typeof bundle.toCSR).toBe('function');
  });

  it('runs a dense -> CSR -> dense round trip and float16 conversions through the bundled code', () => {
    const { tensor, toCSR, fromCSR, validateLayout, toFloat16, fromFloat16, cast, Random, randomTensor, toDense, toNM } = bundle;
    const dense = tensor(new Float32Array([0, 1.5, 0, -2, 0, 0, 3, 0]), [2, 4]);
    const csr = toCSR(dense);
    validateLayout(csr);
    expect([...csr.indptr]).toEqual([0, 2, 3]);
    expect([...csr.indices]).toEqual([1, 3, 2]);
    expect([...fromCSR(csr).data]).toEqual([...dense.data]);
    expect(toFloat16(65520)).toBe(0x7c00);
    expect(toFloat16(1)).toBe(0x3c00);
    expect(fromFloat16(0x0001)).toBe(2 ** -24);
    const half = cast(dense, 'float16');
    const nm = toNM(half, { n: 2, m: 4 });
    expect([...cast(toDense(nm), 'float32').data]).toEqual([...dense.data]);
    const r = randomTensor([3, 3], new Random(1));
    expect([...r.data]).toEqual([...new Random(1).fillUniform(new Float32Array(9))]);
  });
});
