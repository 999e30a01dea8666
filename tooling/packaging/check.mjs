#!/usr/bin/env node
// CI packaging check (run by .ci/run after the tests, on the built dist): packs every publishable
// package with pnpm, as publishing would, and installs the tarballs with plain npm into a scratch
// folder, the way a user would:
//
//   1. the tarballs' contents: caret ranges for @sparse dependencies, LICENSE (the root one), a NOTICE
//      naming any third-party package bundled into dist, no third-party source text in the source
//      maps, `bin` files present and no CommonJS copy of them, no class defined twice in one format;
//   2. `npm install -g --prefix <scratch>/global` of all the tarballs, then `sparse-train --help`,
//      `sparse-train methods` and a tiny recipe (pretrain, prune, adapt) from that prefix, once on the
//      embedded corpus and once on text piped to `--data -`;
//   3. `npm install` of all the tarballs into a scratch project, the same three from its
//      node_modules/.bin, one README example as ESM and as CommonJS (same output), and the trainer's
//      run-time imports checked against its dependencies in the installed tree;
//   4. kernels-cpu installed with no C++ compiler (CXX pointing nowhere): the install succeeds and
//      the kernels run on the TypeScript reference, nativeStatus() saying why and how to build.
//
// Only the npm registry is contacted (by npm, for the third-party dependencies); the native addon of
// @sparse/kernels-cpu builds from the tarball's sources with local headers. With
// SPARSE_REQUIRE_NATIVE=1 (.ci/run sets it when a C++ compiler is present) the installed addon must
// load. Every step prints its name and time; a failing step prints what ran, the end of its output and
// the scratch folder (kept for inspection), and the script exits 1.
//
// Usage: node tooling/packaging/check.mjs [--keep]   (SPARSE_PACK_CHECK_DIR: scratch folder to use)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { duplicateDefinitions, undeclaredImports } from '../config/packaging.mjs';
import { extractJsBlocks } from '../config/readme-examples.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PNPM = ['--yes', 'pnpm@10.34.8'];
const KEEP = process.argv.includes('--keep');
const REQUIRE_NATIVE = process.env.SPARSE_REQUIRE_NATIVE === '1';
/** The README whose first example runs in the installed project (it imports three packages). */
const EXAMPLE_README = 'packages/lora-variants/README.md';

const scratch = process.env.SPARSE_PACK_CHECK_DIR ? resolve(process.env.SPARSE_PACK_CHECK_DIR) : mkdtempSync(join(tmpdir(), 'sparse-pack-check-'));
mkdirSync(scratch, { recursive: true });
const started = Date.now();
const timings = [];

class StepError extends Error {
  constructor(message, detail = '') {
    super(message);
    this.detail = detail;
  }
}

function fail(message, detail) {
  throw new StepError(message, detail);
}

function tail(text, lines = 40) {
  const all = String(text ?? '').trimEnd().split('\n');
  return (all.length > lines ? [`... (${all.length - lines} earlier lines)`, ...all.slice(-lines)] : all).join('\n');
}

/** Runs a command; a non-zero exit fails the step with the command and the end of its output. */
function run(cmd, args, { cwd = ROOT, env = {}, timeout = 600_000, input } = {}) {
  const r = spawnSync(cmd, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024, ...(input !== undefined ? { input } : {}) });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit code ${r.status}${r.signal ? ` (${r.signal})` : ''}`;
    fail(`${[cmd, ...args].join(' ')} (in ${cwd}) failed: ${why}`, tail(output));
  }
  return { stdout: r.stdout, output };
}

async function step(key, name, fn) {
  const t0 = Date.now();
  process.stdout.write(`▶ ${name}\n`);
  try {
    const note = await fn();
    const s = (Date.now() - t0) / 1000;
    timings.push([key, s]);
    process.stdout.write(`  ✓ ${s.toFixed(1)} s${note ? `: ${note}` : ''}\n`);
  } catch (error) {
    process.stdout.write(`  ✗ ${name} failed: ${error.message}\n`);
    if (error.detail) process.stdout.write(`${error.detail.replace(/^/gm, '    ')}\n`);
    if (!(error instanceof StepError)) process.stdout.write(`${error.stack}\n`);
    process.stdout.write(`\npackaging check FAILED at "${name}" after ${((Date.now() - started) / 1000).toFixed(0)} s; scratch folder kept: ${scratch}\n`);
    process.exit(1);
  }
}

/** The publishable packages: every workspace package.json under packages/, kernels/, apps/ not marked private. */
function publishable() {
  const out = [];
  for (const group of ['packages', 'kernels', 'apps']) {
    const base = join(ROOT, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      const file = join(base, name, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (!pkg.private) out.push({ dir: join(base, name), pkg });
    }
  }
  return out;
}

const packages = publishable();
const tarballDir = join(scratch, 'tarballs');
const extracted = join(scratch, 'extracted');
/** name -> { tarball, dir (extracted package folder), pkg (packed package.json) } */
const packed = new Map();

await step('pack', `pack ${packages.length} packages with pnpm`, () => {
  rmSync(tarballDir, { recursive: true, force: true });
  mkdirSync(tarballDir, { recursive: true });
  for (const { dir, pkg } of packages) {
    if (!existsSync(join(dir, 'dist'))) fail(`${relative(ROOT, dir)}/dist is missing: build first (npx --yes pnpm@10.34.8 build)`);
    const before = new Set(readdirSync(tarballDir));
    run('npx', [...PNPM, 'pack', '--pack-destination', tarballDir], { cwd: dir });
    const made = readdirSync(tarballDir).filter((f) => !before.has(f) && f.endsWith('.tgz'));
    if (made.length !== 1) fail(`pnpm pack in ${relative(ROOT, dir)} made ${made.length} tarballs`);
    const out = join(extracted, pkg.name);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    run('tar', ['-xzf', join(tarballDir, made[0]), '-C', out, '--strip-components=1']);
    packed.set(pkg.name, { tarball: join(tarballDir, made[0]), dir: out, pkg: JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) });
  }
  return [...packed.values()].map((p) => relative(tarballDir, p.tarball)).join(', ');
});

await step('contents', 'tarball contents', () => {
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  const problems = [];
  for (const [name, { dir, pkg }] of packed) {
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
      for (const [dep, range] of Object.entries(pkg[field] ?? {})) {
        if (String(range).startsWith('workspace:')) problems.push(`${name}: ${field}.${dep} is still "${range}"`);
        if (dep.startsWith('@sparse/') && !/^\^\d/.test(String(range))) problems.push(`${name}: ${field}.${dep} is "${range}", expected a caret range`);
      }
    }
    if (!existsSync(join(dir, 'LICENSE'))) problems.push(`${name}: no LICENSE in the tarball`);
    else if (readFileSync(join(dir, 'LICENSE'), 'utf8') !== license) problems.push(`${name}: LICENSE differs from the repository's LICENSE`);
    if (pkg.license !== 'Apache-2.0') problems.push(`${name}: license field is ${JSON.stringify(pkg.license)}, the LICENSE file is Apache-2.0`);
    const dist = join(dir, 'dist');
    const bundled = new Set();
    for (const file of readdirSync(dist).filter((f) => f.endsWith('.map'))) {
      const map = JSON.parse(readFileSync(join(dist, file), 'utf8'));
      (map.sources ?? []).forEach((source, i) => {
        const at = source.lastIndexOf('node_modules/');
        if (at < 0) return;
        const parts = source.slice(at + 'node_modules/'.length).split('/');
        const inPnpm = parts[0] === '.pnpm' ? parts.slice(1) : parts;
        bundled.add((inPnpm[0].startsWith('@') && !inPnpm[0].includes('+') ? `${inPnpm[0]}/${inPnpm[1]}` : inPnpm[0]).replace(/@\d.*$/, ''));
        if (map.sourcesContent?.[i] != null) problems.push(`${name}: dist/${file} embeds the text of third-party source ${source}`);
      });
    }
    if (bundled.size > 0) {
      const notice = existsSync(join(dir, 'NOTICE')) ? readFileSync(join(dir, 'NOTICE'), 'utf8') : undefined;
      if (notice === undefined) problems.push(`${name}: dist bundles third-party code (${[...bundled].join(', ')}) but the tarball has no NOTICE`);
      else for (const b of bundled) if (!notice.includes(b)) problems.push(`${name}: NOTICE does not name bundled ${b}`);
    }
    for (const [bin, target] of Object.entries(typeof pkg.bin === 'string' ? { [name]: pkg.bin } : (pkg.bin ?? {}))) {
      if (!existsSync(join(dir, target))) problems.push(`${name}: bin ${bin} -> ${target} is not in the tarball`);
      const cjsTwin = join(dir, target.replace(/\.js$/, '.cjs'));
      if (target.endsWith('.js') && existsSync(cjsTwin)) problems.push(`${name}: ships ${relative(dir, cjsTwin)}, a CommonJS copy of its bin that nothing runs`);
    }
    for (const d of duplicateDefinitions(dist)) problems.push(`${name}: ${d}`);
  }
  if (problems.length > 0) fail(`${problems.length} problem(s) in the tarballs`, problems.join('\n'));
  return `${packed.size} tarballs`;
});

const tarballs = [...packed.values()].map((p) => p.tarball);
const npmFlags = ['--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=warn'];
const allowScripts = run('npm', ['config', 'ls', '-l']).stdout.includes('allow-scripts =');
const kernels = [...packed.values()].find((p) => p.pkg.scripts?.install !== undefined);
// npm matches allowScripts against the resolved package: a tarball is approved under its file: path.
const kernelsId = kernels && `file:${kernels.tarball}`;

/** What npm said about install scripts it did not have approved (they ran anyway unless it says otherwise). */
function scriptPolicyNote(output) {
  return /not yet covered by allowScripts/.test(output) ? '; npm warned: install scripts not covered by allowScripts' : '';
}

/** Loads the installed @sparse/kernels-cpu from `cwd` and reports whether its addon loaded. */
function nativeCheck(cwd, entry) {
  if (kernels === undefined) return '';
  const name = kernels.pkg.name;
  const code = `import(${JSON.stringify(entry)}).then((k) => { const s = k.nativeStatus(); console.log(JSON.stringify({ available: s.available, reason: s.reason })); })`;
  const status = JSON.parse(run(process.execPath, ['--input-type=module', '-e', code], { cwd }).stdout.trim().split('\n').pop());
  if (REQUIRE_NATIVE && !status.available) fail(`SPARSE_REQUIRE_NATIVE=1 but the installed ${name} addon did not load`, status.reason);
  return status.available ? 'native addon built and loaded' : `native addon not available (${status.reason}), reference kernels in use`;
}

/** A run through every face of the packages: a tfjs backend, a pruner, an adapter; seconds at this size. */
const TINY_RECIPE = `name: pack-check
model: { architecture: gpt, d: 16, layers: 1, heads: 2, ctx: 16 }
eval: { windows: 8 }
stages:
  - { stage: pretrain, steps: 3, batch: 4 }
  - { stage: prune, method: wanda, config: { n: 2, m: 4 } }
  - { stage: adapt, method: lora, steps: 2, batch: 4 }
`;

function sparseTrain(bin, cwd) {
  const help = run(bin, ['--help'], { cwd }).stdout;
  if (!/Usage: sparse-train/.test(help)) fail(`${bin} --help printed no usage`, tail(help));
  const methods = run(bin, ['methods'], { cwd }).stdout;
  if (!/^train:/m.test(methods) || !/^adapt:/m.test(methods)) fail(`${bin} methods listed no train/adapt methods`, tail(methods));
  writeFileSync(join(cwd, 'pack-check.yaml'), TINY_RECIPE);
  const out = join(cwd, 'pack-check-run');
  rmSync(out, { recursive: true, force: true });
  const { output } = run(bin, ['--recipe', 'pack-check.yaml', '--out', out], { cwd });
  if (!existsSync(join(out, 'metrics.jsonl'))) fail(`${bin} --recipe pack-check.yaml wrote no metrics.jsonl`, tail(output));
  // the user's own text on standard input (`cat notes.txt | sparse-train --data -`)
  const fromStdin = join(cwd, 'pack-check-stdin');
  rmSync(fromStdin, { recursive: true, force: true });
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8').repeat(4);
  const piped = run(bin, ['--recipe', 'pack-check.yaml', '--data', '-', '--out', fromStdin], { cwd, input: text });
  if (!existsSync(join(fromStdin, 'metrics.jsonl'))) fail(`${bin} --data - (text on stdin) wrote no metrics.jsonl`, tail(piped.output));
}

const globalPrefix = join(scratch, 'global');
await step('global install', 'npm install -g --prefix <scratch>/global (all tarballs)', () => {
  rmSync(globalPrefix, { recursive: true, force: true });
  const allow = allowScripts && kernels ? [`--allow-scripts=${kernelsId}`] : [];
  const { output } = run('npm', ['install', '-g', '--prefix', globalPrefix, ...npmFlags, ...allow, ...tarballs]);
  return `npm ${run('npm', ['--version']).stdout.trim()}${allowScripts ? ', --allow-scripts for the kernels-cpu tarball' : ''}${scriptPolicyNote(output)}`;
});

await step('global run', 'global: sparse-train --help, methods, a tiny recipe', () => {
  const bin = process.platform === 'win32' ? join(globalPrefix, 'sparse-train.cmd') : join(globalPrefix, 'bin', 'sparse-train');
  if (!existsSync(bin)) fail(`${bin} was not installed`);
  sparseTrain(bin, scratch);
  const lib = process.platform === 'win32' ? join(globalPrefix, 'node_modules') : join(globalPrefix, 'lib', 'node_modules');
  return kernels ? nativeCheck(scratch, join(lib, kernels.pkg.name, 'dist', 'index.js')) : '';
});

const project = join(scratch, 'local');
await step('local install', 'npm install (all tarballs) into a scratch project', () => {
  rmSync(project, { recursive: true, force: true });
  mkdirSync(project, { recursive: true });
  // allowScripts: newer npm's install-script policy (ignored by npm 10, which runs install scripts).
  const policy = kernels ? { [kernels.pkg.name]: true, [kernelsId]: true } : {};
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'sparse-pack-check', private: true, allowScripts: policy }, null, 2)}\n`);
  const { output } = run('npm', ['install', ...npmFlags, ...tarballs], { cwd: project });
  return scriptPolicyNote(output).slice(2);
});

await step('local run', 'local: sparse-train --help, methods, a tiny recipe', () => {
  const bin = join(project, 'node_modules', '.bin', process.platform === 'win32' ? 'sparse-train.cmd' : 'sparse-train');
  if (!existsSync(bin)) fail(`${bin} was not installed`);
  sparseTrain(bin, project);
  return kernels ? nativeCheck(project, kernels.pkg.name) : '';
});

await step('no compiler', 'local: kernels-cpu installs without a C++ compiler and falls back to the reference kernels', () => {
  if (kernels === undefined) return 'no package with an install script';
  const dir = join(scratch, 'no-compiler');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'sparse-pack-check-no-compiler', private: true, allowScripts: { [kernels.pkg.name]: true, [kernelsId]: true } }, null, 2)}\n`);
  const deps = [...packed.values()].filter((p) => p === kernels || kernels.pkg.dependencies?.[p.pkg.name] !== undefined).map((p) => p.tarball);
  run('npm', ['install', ...npmFlags, ...deps], { cwd: dir, env: { CXX: join(dir, 'no-such-compiler') } });
  const code = `const k = await import(${JSON.stringify(kernels.pkg.name)}); const t = await import('@sparse/tensor');
const r = k.registerCPUKernels(); const c = new Float32Array(1);
t.getKernel('gemm')({ transA: false, transB: false, m: 1, n: 1, k: 2, alpha: 1, a: Float32Array.from([1, 2]), aOffset: 0, lda: 2, b: Float32Array.from([3, 4]), bOffset: 0, ldb: 1, beta: 0, c, cOffset: 0, ldc: 1 });
console.log(JSON.stringify({ native: r.native, info: k.nativeInfo() ?? null, reason: k.nativeStatus().reason ?? '', backend: t.kernelBackend('gemm'), c: c[0] }));`;
  const status = JSON.parse(run(process.execPath, ['--input-type=module', '-e', code], { cwd: dir }).stdout.trim().split('\n').pop());
  if (status.native || status.info !== null) fail('the addon loaded although the build had no compiler', JSON.stringify(status));
  if (status.backend !== 'reference' || status.c !== 11) fail('gemm did not run on the reference kernels', JSON.stringify(status));
  if (!/build-native\.mjs --force/.test(status.reason)) fail('nativeStatus().reason does not say how to build the addon', status.reason);
  return 'reference kernels in use, nativeStatus() says how to build';
});

await step('example', `local: the first example of ${EXAMPLE_README} as ESM and as CommonJS`, () => {
  const [example] = extractJsBlocks(readFileSync(join(ROOT, EXAMPLE_README), 'utf8'));
  if (example === undefined) fail(`${EXAMPLE_README} has no \`\`\`js example`);
  const cjs = toCommonJS(example);
  writeFileSync(join(project, 'example.mjs'), example);
  writeFileSync(join(project, 'example.cjs'), cjs);
  const esmOut = run(process.execPath, ['example.mjs'], { cwd: project }).stdout;
  const cjsOut = run(process.execPath, ['example.cjs'], { cwd: project }).stdout;
  if (esmOut.trim() === '') fail('the ESM example printed nothing');
  if (esmOut !== cjsOut) fail('the ESM and CommonJS examples printed different output', `ESM:\n${esmOut}\nCommonJS:\n${cjsOut}`);
  return `${esmOut.trim().split('\n').length} lines, identical`;
});

await step('dependencies', 'local: the trainer declares what its run time imports (installed tree)', () => {
  const apps = [...packed.values()].filter((p) => p.pkg.bin !== undefined);
  const problems = [];
  for (const app of apps) {
    const r = undeclaredImports(join(project, 'node_modules', app.pkg.name), { app: true });
    for (const n of r.undeclared) problems.push(`${app.pkg.name} imports ${n} but does not declare it`);
    for (const n of r.peersNotProvided) problems.push(`${app.pkg.name} does not depend on ${n}`);
  }
  if (problems.length > 0) fail('undeclared run-time dependencies', problems.join('\n'));
  return apps.map((a) => a.pkg.name).join(', ');
});

/**
 * The README example as CommonJS: its `import` statements become `require` calls and the rest runs
 * inside an async function (examples may use top-level await). Fails on an import it cannot convert.
 */
function toCommonJS(code) {
  const lines = [];
  const body = code.replace(/^import\s+([\s\S]*?)\s+from\s+(['"][^'"]+['"]);?[ \t]*$/gm, (_, what, from) => {
    const w = what.trim();
    if (w.startsWith('* as ')) lines.push(`const ${w.slice(5).trim()} = require(${from});`);
    else if (w.startsWith('{')) lines.push(`const ${w.replace(/\s+as\s+/g, ': ')} = require(${from});`);
    else lines.push(`const ${w} = require(${from}).default ?? require(${from});`);
    return '';
  });
  const sideEffects = body.replace(/^import\s+(['"][^'"]+['"]);?[ \t]*$/gm, (_, from) => {
    lines.push(`require(${from});`);
    return '';
  });
  if (/^\s*(import|export)\b/m.test(sideEffects)) fail('the README example has an import or export the CommonJS conversion does not handle', code);
  return `'use strict';\n${lines.join('\n')}\n(async () => {\n${sideEffects}\n})().catch((e) => { console.error(e); process.exit(1); });\n`;
}

const total = (Date.now() - started) / 1000;
process.stdout.write(`\npackaging check passed in ${total.toFixed(0)} s (${timings.map(([n, s]) => `${n} ${s.toFixed(0)} s`).join(', ')})\n`);
if (KEEP || process.env.SPARSE_PACK_CHECK_DIR) process.stdout.write(`scratch folder: ${scratch}\n`);
else rmSync(scratch, { recursive: true, force: true });
