#!/usr/bin/env node
// Builds the native addon (build/Release/sparse_cpu.node) with node-gyp. Runs as the package's
// `install` script, so it must never fail an install: any problem is reported in one line and the
// kernels fall back to the TypeScript reference. Never downloads anything (headers come from the
// local Node installation). Flags: --force rebuilds even when the addon is up to date; --verbose
// streams the compiler output.
//
// Environment: SPARSE_SKIP_NATIVE_BUILD=1 skips the build; SPARSE_OPENBLAS=0 ignores an installed
// OpenBLAS; SPARSE_OPENBLAS_INCLUDE / SPARSE_OPENBLAS_LIBDIR point at a non-standard one;
// SPARSE_NODEDIR (or npm_config_nodedir) names a directory holding include/node/node.h.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PREFIX = '@sparse/kernels-cpu';
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(pkgDir, 'build');
const addonPath = path.join(buildDir, 'Release', 'sparse_cpu.node');
const stampPath = path.join(buildDir, 'sparse-build.json');
const logPath = path.join(buildDir, 'native-build.log');
const force = process.argv.includes('--force');
const verbose = process.argv.includes('--verbose');

class BuildFailure extends Error {}
const failure = (reason) => new BuildFailure(reason);

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
}

/** True when `cmd --version` runs. */
function hasTool(cmd) {
  const r = run(cmd, ['--version'], { stdio: 'ignore', timeout: 20_000 });
  return r.status === 0;
}

/** The C++ compiler: $CXX, else g++, else c++. */
function compiler() {
  return process.env.CXX || (process.platform === 'win32' || hasTool('g++') ? 'g++' : 'c++');
}

/** The first line of `cxx --version` (compiler and version), part of the build key. */
function compilerVersion(cxx) {
  const r = run(cxx, ['--version'], { timeout: 20_000 });
  return r.status === 0 ? r.stdout.split('\n')[0].trim() : '';
}

function checkToolchain() {
  const python = process.env.PYTHON || 'python3';
  if (!hasTool(python) && !(process.env.PYTHON === undefined && hasTool('python'))) {
    throw failure(`${python} not found; node-gyp needs Python 3 (install python3 or set PYTHON)`);
  }
  if (process.platform !== 'win32') {
    if (!hasTool('make')) throw failure('make not found (install make, e.g. Debian build-essential)');
    const cxx = compiler();
    if (!hasTool(cxx)) throw failure(`C++ compiler ${cxx} not found (install g++ or set CXX)`);
  }
  return python;
}

/** The directory whose include/node/node.h node-gyp compiles against; never a download. */
function findNodeDir() {
  const candidates = [process.env.SPARSE_NODEDIR, process.env.npm_config_nodedir, path.dirname(path.dirname(process.execPath))];
  for (const dir of candidates) {
    if (dir && existsSync(path.join(dir, 'include', 'node', 'node.h'))) return dir;
  }
  const prefix = path.dirname(path.dirname(process.execPath));
  throw failure(
    `Node headers not found at ${path.join(prefix, 'include', 'node')}; install them (e.g. Debian libnode-dev) or set SPARSE_NODEDIR`,
  );
}

function resolveFrom(request) {
  const require = createRequire(path.join(pkgDir, 'package.json'));
  try {
    return require.resolve(request);
  } catch {
    throw failure(`cannot resolve ${request.split('/').slice(0, 1).join('/')} (run pnpm install)`);
  }
}

function multiarch() {
  const r = run(process.env.CC || 'gcc', ['-print-multiarch'], { timeout: 20_000 });
  return r.status === 0 ? r.stdout.trim() : '';
}

/**
 * Finds an OpenBLAS that really links and runs: compiles a probe against each candidate cblas.h /
 * libopenblas pair. Returns { include, libdir } ('' for the compiler's default paths) or null.
 */
function findOpenBLAS() {
  if (process.env.SPARSE_OPENBLAS === '0' || process.platform === 'win32') return null;
  const cxx = compiler();
  const arch = multiarch();
  const includes = [process.env.SPARSE_OPENBLAS_INCLUDE, ''];
  const libdirs = [process.env.SPARSE_OPENBLAS_LIBDIR, ''];
  for (const flavour of ['openblas-pthread', 'openblas-openmp', 'openblas-serial']) {
    if (arch) {
      includes.push(`/usr/include/${arch}/${flavour}`);
      libdirs.push(`/usr/lib/${arch}/${flavour}`);
    }
  }
  includes.push('/usr/include/openblas', '/usr/local/include', '/opt/OpenBLAS/include');
  libdirs.push('/usr/local/lib', '/opt/OpenBLAS/lib');
  const incs = [...new Set(includes.filter((d) => d !== undefined))].filter((d) => d === '' || existsSync(path.join(d, 'cblas.h')));
  const libs = [...new Set(libdirs.filter((d) => d !== undefined))].filter(
    (d) => d === '' || readdirSafe(d).some((f) => f.startsWith('libopenblas')),
  );
  if (incs.length === 0 || libs.length === 0) return null;

  const dir = mkdtempSync(path.join(os.tmpdir(), 'sparse-openblas-'));
  try {
    const src = path.join(dir, 'probe.cc');
    // openblas_set_num_threads only exists in OpenBLAS's cblas.h, so another BLAS's header fails here.
    writeFileSync(
      src,
      `#include <cblas.h>
int main() {
  openblas_set_num_threads(1);
  float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {0, 0, 0, 0};
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1.0f, a, 2, b, 2, 0.0f, c, 2);
  return (c[0] == 19 && c[1] == 22 && c[2] == 43 && c[3] == 50) ? 0 : 1;
}
`,
    );
    const exe = path.join(dir, 'probe');
    for (const include of incs) {
      for (const libdir of libs) {
        const args = [src, '-o', exe];
        if (include) args.push(`-I${include}`);
        if (libdir) args.push(`-L${libdir}`, `-Wl,-rpath,${libdir}`);
        args.push('-lopenblas');
        if (run(cxx, args).status !== 0) continue;
        if (run(exe, [], { env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } }).status === 0) return { include, libdir };
      }
    }
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readdirSafe(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Hash of everything that determines the binary, so a repeated install skips an identical build. */
function buildKey(config) {
  const h = createHash('sha256');
  h.update(JSON.stringify({ ...config, node: process.version, arch: process.arch, platform: process.platform }));
  h.update(readFileSync(path.join(pkgDir, 'binding.gyp')));
  const nativeDir = path.join(pkgDir, 'native');
  for (const f of readdirSafe(nativeDir).sort()) {
    h.update(f);
    h.update(readFileSync(path.join(nativeDir, f)));
  }
  return h.digest('hex');
}

function loadInfo() {
  const require = createRequire(import.meta.url);
  return require(addonPath).info();
}

function describe(info) {
  return `${info.simd}, ${info.threads} thread${info.threads === 1 ? '' : 's'}, blas ${info.blas}`;
}

function build() {
  if (process.env.SPARSE_SKIP_NATIVE_BUILD === '1') {
    console.log(`${PREFIX}: native build skipped (SPARSE_SKIP_NATIVE_BUILD=1); kernels fall back to the TypeScript reference`);
    return;
  }
  const python = checkToolchain();
  const nodedir = findNodeDir();
  const nodeGyp = path.join(path.dirname(resolveFrom('node-gyp/package.json')), 'bin', 'node-gyp.js');
  const napiInclude = path.dirname(resolveFrom('node-addon-api/package.json'));
  const openblas = findOpenBLAS();
  // What the build probes decides the binary, so it is all in the key: a new compiler or an
  // OpenBLAS installed since the last build triggers a rebuild. CPU features are not: the AVX2
  // kernels are always compiled (x64) and chosen at run time.
  const config = { nodedir, napiInclude, openblas, cxx: process.platform === 'win32' ? '' : compilerVersion(compiler()) };
  const key = buildKey(config);

  if (!force && existsSync(addonPath) && existsSync(stampPath)) {
    try {
      if (JSON.parse(readFileSync(stampPath, 'utf8')).key === key) {
        console.log(`${PREFIX}: native addon up to date (${describe(loadInfo())})`);
        return;
      }
    } catch {
      // A stale or unloadable build is rebuilt below.
    }
  }

  const jobs = Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 4));
  const args = [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, `--python=${python}`, `--jobs=${jobs}`, `--sparse_napi_include=${napiInclude}`];
  if (openblas) {
    args.push('--sparse_openblas=1');
    if (openblas.include) args.push(`--sparse_openblas_include=${openblas.include}`);
    if (openblas.libdir) args.push(`--sparse_openblas_libdir=${openblas.libdir}`);
  }
  const r = spawnSync(process.execPath, args, {
    cwd: pkgDir,
    encoding: 'utf8',
    timeout: 15 * 60_000,
    stdio: verbose ? 'inherit' : 'pipe',
    // The headers are local; keep node-gyp from reaching for the network under any configuration.
    // CXX names the compiler probed above (make's default is g++, absent where only c++ exists).
    env: { ...process.env, npm_config_nodedir: nodedir, ...(process.platform === 'win32' ? {} : { CXX: compiler() }) },
  });
  if (!verbose) {
    mkdirSync(buildDir, { recursive: true });
    writeFileSync(logPath, `${process.execPath} ${args.join(' ')}\n\n${r.stdout ?? ''}\n${r.stderr ?? ''}`);
  }
  if (r.error) throw failure(`node-gyp did not run: ${r.error.message}`);
  if (r.status !== 0) {
    const where = verbose ? 'output above' : `log in ${path.relative(process.cwd(), logPath) || logPath}`;
    throw failure(`node-gyp exited with ${r.status ?? r.signal}; ${where}`);
  }
  let info;
  try {
    info = loadInfo();
  } catch (err) {
    throw failure(`the built addon does not load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  writeFileSync(stampPath, JSON.stringify({ key, config, info }, null, 2));
  console.log(`${PREFIX}: native addon built (${describe(info)})`);
}

try {
  build();
} catch (err) {
  const reason = err instanceof BuildFailure ? err.message : `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
  console.error(`${PREFIX}: native build failed (${reason}); kernels fall back to the TypeScript reference`);
}
process.exit(0);
