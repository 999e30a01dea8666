// Runs the JavaScript examples of a package README against the package's built dist, the way a
// user would: each ```js block is written beside package.json (so `import '@scope/name'` resolves
// through the package's own exports map) and executed with node. Returns each block's output.
// typecheckReadmeExamples checks the same blocks against the built types, as a strict TypeScript
// project would see them.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

/** Extracts the ```js / ```javascript blocks of a markdown file. */
export function extractJsBlocks(markdown) {
  const blocks = [];
  const re = /```(?:js|javascript|mjs)\n([\s\S]*?)```/g;
  let m;
  while ((m = re.exec(markdown)) !== null) blocks.push(m[1]);
  return blocks;
}

/** @param {string} packageDir @returns {{ code: string, stdout: string }[]} */
export function runReadmeExamples(packageDir, { timeoutMs = 120_000 } = {}) {
  const blocks = extractJsBlocks(readFileSync(join(packageDir, 'README.md'), 'utf8'));
  if (blocks.length === 0) throw new Error(`${packageDir}/README.md has no \`\`\`js example`);
  return blocks.map((code, i) => {
    const file = join(packageDir, `.readme-example-${process.pid}-${i}.mjs`);
    writeFileSync(file, code);
    try {
      const stdout = execFileSync(process.execPath, [file], { cwd: packageDir, encoding: 'utf8', timeout: timeoutMs });
      return { code, stdout };
    } finally {
      rmSync(file, { force: true });
    }
  });
}

/** The two ways a TypeScript project resolves packages: Node's own (node16) and a bundler's. */
export const README_RESOLUTIONS = /** @type {const} */ (['node16', 'bundler']);

/**
 * Type-checks the ```js examples of a package README with `strict` and `checkJs`, each block an ES
 * module (`.mjs`) beside the package's package.json, once per resolution of README_RESOLUTIONS
 * (module node16 / moduleResolution node16, and module esnext / moduleResolution bundler), against
 * the built `.d.ts` the exports map points at. Returns the diagnostics of each resolution, '' when
 * there are none; each names the README line of the block it is in.
 * @param {string} packageDir
 * @returns {Record<'node16' | 'bundler', string>}
 */
export function typecheckReadmeExamples(packageDir) {
  const ts = createRequire(import.meta.url)('typescript');
  const readme = readFileSync(join(packageDir, 'README.md'), 'utf8');
  const blocks = [];
  const re = /```(?:js|javascript|mjs)\n([\s\S]*?)```/g;
  let m;
  while ((m = re.exec(readme)) !== null) blocks.push({ code: m[1], line: readme.slice(0, m.index).split('\n').length + 1 });
  if (blocks.length === 0) throw new Error(`${packageDir}/README.md has no \`\`\`js example`);
  const dir = join(packageDir, `.readme-example-types-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const files = blocks.map((b, i) => {
      const file = join(dir, `example-${i}.mjs`);
      writeFileSync(file, b.code);
      return file;
    });
    const where = (fileName) => {
      const i = files.findIndex((f) => relative(f, fileName) === '');
      return i < 0 ? fileName : `README.md block ${i + 1} (starting line ${blocks[i].line})`;
    };
    const base = { strict: true, allowJs: true, checkJs: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts'], types: ['node'] };
    const options = {
      node16: { ...base, module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 },
      bundler: { ...base, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler },
    };
    const out = /** @type {Record<'node16' | 'bundler', string>} */ ({ node16: '', bundler: '' });
    for (const resolution of README_RESOLUTIONS) {
      const program = ts.createProgram(files, options[resolution]);
      const diagnostics = ts.getPreEmitDiagnostics(program);
      out[resolution] = diagnostics
        .map((d) => {
          const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
          if (d.file === undefined || d.start === undefined) return `TS${d.code}: ${text}`;
          const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
          const lines = d.file.text.split('\n');
          return `${where(d.file.fileName)}, line ${line + 1}:${character + 1}: TS${d.code}: ${text}\n    ${lines[line]?.trim() ?? ''}`;
        })
        .join('\n');
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The README type-check suite every package runs: one test per resolution of README_RESOLUTIONS,
 * each expecting no diagnostics from typecheckReadmeExamples(packageDir). The test runner's functions
 * are passed in, so this module does not depend on vitest. `prepare` runs first (e.g. a build), within
 * `timeoutMs`.
 * @param {string} packageDir
 * @param {{ describe: Function; it: { each: Function }; expect: Function; beforeAll: Function }} vitest
 * @param {{ prepare?: () => void; timeoutMs?: number }} [opts]
 */
export function readmeTypecheckSuite(packageDir, { describe, it, expect, beforeAll }, opts = {}) {
  describe('README examples type-check', () => {
    /** @type {Record<'node16' | 'bundler', string>} */
    let result;
    beforeAll(() => {
      opts.prepare?.();
      result = typecheckReadmeExamples(packageDir);
    }, opts.timeoutMs);
    it.each(README_RESOLUTIONS)('strict, moduleResolution %s', (/** @type {'node16' | 'bundler'} */ resolution) => {
      expect(result[resolution]).toBe('');
    });
  });
}
