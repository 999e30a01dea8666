// Checks of what a package's built dist needs at run time, shared by package tests and the CI
// packaging step (tooling/packaging/check.mjs). They read the files a tarball would carry, not src.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const BUILTINS = new Set(builtinModules);

/** Whether `specifier` names a Node built-in ('fs', 'node:fs', 'fs/promises'). */
export function isBuiltin(specifier) {
  return specifier.startsWith('node:') || BUILTINS.has(specifier) || BUILTINS.has(specifier.split('/')[0]);
}

/** The package a bare specifier names, or undefined for relative paths, URLs and built-ins. */
export function packageName(specifier) {
  if (specifier.startsWith('.') || specifier.startsWith('/') || /^[a-z][a-z\d+.-]*:/i.test(specifier) || isBuiltin(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

/**
 * The module specifiers a built JavaScript file loads when it is evaluated: static `import` and
 * `export ... from`, `require('x')` and `import('x')` with a string literal. A dynamic import of a
 * computed name (how optional backends are detected at run time) is not a dependency of the file.
 * @param {string} code
 */
export function importsOf(code) {
  const out = new Set();
  const patterns = [
    /^\s*import\s+(?:[\w$*{}\s,]+?\s+from\s+)?["']([^"']+)["']/gm,
    /^\s*export\s+(?:\*|\{[^}]*\})(?:\s+as\s+[\w$]+)?\s+from\s+["']([^"']+)["']/gm,
    /(?<![\w$.])require\(\s*["']([^"']+)["']\s*\)/g,
    /(?<![\w$.])import\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.add(m[1]);
  return [...out];
}

function readJSON(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** The file an exports-map target of `pkg` resolves to for `condition` ('import' or 'require'). */
function exportTarget(pkgDir, pkg, subpath, condition) {
  let target = pkg.exports?.[subpath];
  while (target !== undefined && typeof target === 'object') target = target[condition] ?? target.default;
  if (typeof target !== 'string') throw new Error(`${pkg.name}: no '${subpath}' export for '${condition}'`);
  return join(pkgDir, target);
}

/**
 * Follows the files a package's entry points load, into the @sparse packages they import (through
 * each one's exports map, found from the importing file as Node would), and returns, per package
 * reached, the packages its loaded files import.
 * @param {string} packageDir
 * @param {string[]} entryFiles files of packageDir to start from
 * @returns {Map<string, { dir: string, pkg: any, imports: Set<string> }>}
 */
export function runtimeImports(packageDir, entryFiles) {
  const reached = new Map();
  const seen = new Set();
  const queue = entryFiles.map((f) => ({ file: resolve(packageDir, f), dir: resolve(packageDir) }));
  while (queue.length > 0) {
    const { file, dir } = queue.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    if (!reached.has(dir)) reached.set(dir, { dir, pkg: readJSON(join(dir, 'package.json')), imports: new Set() });
    const entry = reached.get(dir);
    const condition = file.endsWith('.cjs') ? 'require' : 'import';
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        queue.push({ file: resolve(dirname(file), spec), dir });
        continue;
      }
      const name = packageName(spec);
      if (name === undefined) continue;
      entry.imports.add(name);
      if (!name.startsWith('@sparse/') || name === entry.pkg.name) continue;
      const pkgJSON = createRequire(file).resolve(`${name}/package.json`);
      const subpath = `.${spec.slice(name.length)}`;
      const pkgDir = dirname(pkgJSON);
      queue.push({ file: exportTarget(pkgDir, readJSON(pkgJSON), subpath, condition), dir: pkgDir });
    }
  }
  return reached;
}

/** The entry files of a package: every exports-map target (import and require) and every bin. */
export function entryFiles(packageDir) {
  const pkg = readJSON(join(packageDir, 'package.json'));
  const files = new Set();
  for (const [subpath, value] of Object.entries(pkg.exports ?? {})) {
    if (subpath === './package.json') continue;
    for (const condition of ['import', 'require']) if (typeof value === 'object') files.add(exportTarget(packageDir, pkg, subpath, condition));
  }
  for (const bin of Object.values(typeof pkg.bin === 'string' ? { bin: pkg.bin } : (pkg.bin ?? {}))) files.add(join(packageDir, bin));
  return [...files];
}

/**
 * What a package's run time imports but does not declare. `undeclared`: packages its own dist files
 * import that are in neither dependencies nor peerDependencies. `peersNotProvided`: packages that
 * the @sparse packages it loads import as their peers (their users install them) and that it
 * neither depends on nor passes on as a peer of its own. With `app` (a package users run, like the
 * trainer, and that nobody installs peers for) only its dependencies count as providing them.
 * @param {string} packageDir
 * @param {{ app?: boolean }} [opts]
 */
export function undeclaredImports(packageDir, { app = false } = {}) {
  const reached = runtimeImports(packageDir, entryFiles(packageDir));
  const own = reached.get(resolve(packageDir));
  const deps = own.pkg.dependencies ?? {};
  const peers = own.pkg.peerDependencies ?? {};
  const declared = new Set([...Object.keys(deps), ...Object.keys(peers), own.pkg.name]);
  const undeclared = [...own.imports].filter((n) => !declared.has(n)).sort();
  const provides = (name) => deps[name] !== undefined || (!app && peers[name] !== undefined);
  const peersNotProvided = new Set();
  for (const other of reached.values()) {
    if (other === own) continue;
    for (const name of other.imports) {
      if (other.pkg.peerDependencies?.[name] !== undefined && !provides(name)) peersNotProvided.add(`${name} (imported by ${other.pkg.name})`);
    }
  }
  return { undeclared, peersNotProvided: [...peersNotProvided].sort(), reached: [...reached.values()].map((r) => r.pkg.name).sort() };
}

/**
 * Module-level state defined in more than one file of one format of a built dist (`dir`): a class,
 * or a Map / Set / WeakMap / registry made at the top level. Each file that defines one has its own
 * copy, so `instanceof` fails across entry points and a registration made through one entry is
 * unknown to another; with shared chunks every module is in exactly one file per format.
 * @param {string} dir
 * @returns {string[]} one line per duplicate: '<name> in <files> (<format>)'
 */
export function duplicateDefinitions(dir) {
  const out = [];
  const files = readdirSync(dir);
  for (const [format, ext] of [['ESM', '.js'], ['CJS', '.cjs']]) {
    /** @type {Map<string, string[]>} */
    const seen = new Map();
    for (const f of files.filter((x) => x.endsWith(ext))) {
      const code = readFileSync(join(dir, f), 'utf8');
      const re = /^(?:var|let|const|class) ([A-Za-z_$][\w$]*)\s*(?:=\s*(?:class\b|(?:\/\* @__PURE__ \*\/ )?new (?:Map|Set|WeakMap|WeakSet)\b|[\w$.]*createRegistry\()|extends\b|\{)/gm;
      for (const m of code.matchAll(re)) seen.set(m[1], [...(seen.get(m[1]) ?? []), f]);
    }
    for (const [name, where] of seen) if (where.length > 1) out.push(`${name} is defined in ${where.join(', ')} (${format})`);
  }
  return out;
}

/**
 * Runs `code` with node as a file beside the package's package.json (so `@scope/name` resolves
 * through the package's own exports map, to its built dist) and returns stdout. `ext` '.mjs' runs it
 * as ESM, '.cjs' as CommonJS.
 * @param {string} packageDir
 * @param {string} code
 * @param {{ ext?: '.mjs' | '.cjs', timeoutMs?: number }} [opts]
 */
export function runInPackage(packageDir, code, { ext = '.mjs', timeoutMs = 120_000 } = {}) {
  const file = join(packageDir, `.dist-check-${process.pid}-${Math.random().toString(36).slice(2)}${ext}`);
  writeFileSync(file, code);
  try {
    return execFileSync(process.execPath, [file], { cwd: packageDir, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    throw new Error(`${file} failed: ${error.stderr || error.message}`);
  } finally {
    rmSync(file, { force: true });
  }
}

