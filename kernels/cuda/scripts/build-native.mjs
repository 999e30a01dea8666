#!/usr/bin/env node
// Builds the CUDA addon (build/Release/sparse_cuda.node), the standalone test program
// (build/gpu_test) and the cuSPARSELt comparison (build/cusparselt_bench) with nvcc, for sm_80 and sm_90 (cubins) plus compute_90 PTX. When nvcc is not
// found the build is skipped with one line and exits 0, so installs and CI without CUDA pass.
// Nothing is downloaded. cudart is linked statically; cuBLAS is not linked (the test program loads
// it at run time for its dense baseline).
//
// Flags: --force rebuilds even when up to date; --verbose prints the commands.
// Environment: SPARSE_SKIP_CUDA_BUILD=1 skips; SPARSE_NVCC names nvcc (the only one tried when set; else CUDA_HOME/bin/nvcc,
// CUDA_PATH/bin/nvcc, nvcc on PATH, /usr/local/cuda/bin/nvcc); SPARSE_REQUIRE_CUDA_BUILD=1 makes a
// missing nvcc or a failed build exit 1; SPARSE_NODEDIR (or npm_config_nodedir) names the directory
// holding include/node/node.h; CXX the host C++ compiler for the binding (default g++).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cubinArchs } from './fatbin-archs.mjs';

const PREFIX = '@sparse/kernels-cuda';
const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(pkgDir, 'native');
const buildDir = path.join(pkgDir, 'build');
const objDir = path.join(buildDir, 'obj');
const addonPath = path.join(buildDir, 'Release', 'sparse_cuda.node');
const testPath = path.join(buildDir, 'gpu_test');
const ltPath = path.join(buildDir, 'cusparselt_bench');
const stampPath = path.join(buildDir, 'sparse-cuda-build.json');
const logPath = path.join(buildDir, 'native-build.log');
const force = process.argv.includes('--force');
const verbose = process.argv.includes('--verbose');
const require_ = process.env.SPARSE_REQUIRE_CUDA_BUILD === '1';

/** The SM versions the build targets; the check after linking requires a cubin for each. */
export const ARCHS = [80, 90];
const GENCODE = ['-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90,code=[sm_90,compute_90]'];
const KERNEL_SOURCES = ['sparse24.cu', 'spmm.cu', 'attention.cu', 'adam.cu'];

class BuildFailure extends Error {}
class Skip extends Error {}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
}

function findNvcc() {
  // SPARSE_NVCC, when set, is the only candidate (so a wrong path reads as "not found").
  const candidates = process.env.SPARSE_NVCC ? [process.env.SPARSE_NVCC] : [
    process.env.CUDA_HOME && path.join(process.env.CUDA_HOME, 'bin', 'nvcc'),
    process.env.CUDA_PATH && path.join(process.env.CUDA_PATH, 'bin', 'nvcc'),
    'nvcc',
    '/usr/local/cuda/bin/nvcc',
  ].filter(Boolean);
  for (const c of candidates) {
    const r = run(c, ['--version'], { timeout: 30_000 });
    if (r.status === 0) return { nvcc: c, version: (r.stdout.match(/release [^\n]*/) ?? [''])[0].trim() };
  }
  return null;
}

/** CUDA's include directory next to nvcc (for cuda_runtime.h when compiling the binding with g++). */
function cudaInclude(nvcc) {
  const r = run(nvcc, ['--dryrun', '-E', '-x', 'c++', '/dev/null'], { timeout: 30_000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const m = text.match(/INCLUDES="([^"]*)"/);
  const dirs = m ? [...m[1].matchAll(/-I"?([^"\s]+)"?/g)].map((x) => x[1]) : [];
  dirs.push('/usr/local/cuda/include');
  const found = dirs.find((d) => existsSync(path.join(d, 'cuda_runtime.h')));
  if (!found) throw new BuildFailure('cuda_runtime.h not found next to nvcc');
  return found;
}

function findNodeDir() {
  const candidates = [process.env.SPARSE_NODEDIR, process.env.npm_config_nodedir, path.dirname(path.dirname(process.execPath))];
  for (const dir of candidates) if (dir && existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return dir;
  throw new BuildFailure(`Node headers not found at ${path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node')}; set SPARSE_NODEDIR`);
}

function napiInclude() {
  try {
    return path.dirname(createRequire(path.join(pkgDir, 'package.json')).resolve('node-addon-api/package.json'));
  } catch {
    throw new BuildFailure('cannot resolve node-addon-api (run pnpm install)');
  }
}

function buildKey(config) {
  const h = createHash('sha256');
  h.update(JSON.stringify({ ...config, node: process.version, arch: process.arch, gencode: GENCODE }));
  for (const f of readdirSync(nativeDir).sort()) {
    h.update(f);
    h.update(readFileSync(path.join(nativeDir, f)));
  }
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  return h.digest('hex');
}

const log = [];
/** Runs a command asynchronously; resolves with its output, rejects with BuildFailure. */
function exec(cmd, args) {
  log.push(`$ ${cmd} ${args.join(' ')}`);
  if (verbose) console.log(`${cmd} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: pkgDir });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => reject(new BuildFailure(`${cmd} did not run: ${e.message}`)));
    child.on('close', (code) => {
      log.push(out);
      if (code === 0) resolve(out);
      else reject(new BuildFailure(`${path.basename(cmd)} exited with ${code} building ${args.find((a) => /\.(cu|cc)$/.test(a)) ?? args.at(-1)}`));
    });
  });
}

/** Runs the jobs at most `limit` at a time. */
async function pool(jobs, limit) {
  const queue = [...jobs];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await queue.shift()();
  });
  await Promise.all(workers);
}

async function build() {
  if (process.env.SPARSE_SKIP_CUDA_BUILD === '1') throw new Skip('SPARSE_SKIP_CUDA_BUILD=1');
  const found = findNvcc();
  if (!found) throw new Skip('nvcc not found (install the CUDA toolkit or set SPARSE_NVCC)');
  const { nvcc, version } = found;
  const cxx = process.env.CXX || 'g++';
  if (run(cxx, ['--version'], { timeout: 20_000 }).status !== 0) throw new BuildFailure(`C++ compiler ${cxx} not found (install g++ or set CXX)`);
  const nodedir = findNodeDir();
  const napi = napiInclude();
  const cudaInc = cudaInclude(nvcc);
  const config = { nvcc: version, cxx, nodedir, napi };
  const key = buildKey(config);
  if (!force && existsSync(addonPath) && existsSync(testPath) && existsSync(ltPath) && existsSync(stampPath)) {
    try {
      const stamp = JSON.parse(readFileSync(stampPath, 'utf8'));
      if (stamp.key === key) {
        console.log(`${PREFIX}: CUDA addon and gpu_test up to date (${version}; sm_${stamp.archs.join(', sm_')})`);
        return;
      }
    } catch {
      // rebuilt below
    }
  }
  mkdirSync(objDir, { recursive: true });
  mkdirSync(path.dirname(addonPath), { recursive: true });
  const started = Date.now();
  const nvccFlags = ['-std=c++17', '-O3', '-Xcompiler', '-fPIC', ...GENCODE];
  const obj = (src) => path.join(objDir, src.replace(/\.(cu|cc)$/, '.o'));
  const jobs = [...KERNEL_SOURCES, 'gpu_test.cu', 'cusparselt_bench.cu'].map((src) => () => exec(nvcc, [...nvccFlags, '-c', path.join(nativeDir, src), '-o', obj(src)]));
  jobs.push(() =>
    exec(cxx, [
      '-std=c++17', '-O2', '-fPIC', '-fexceptions', '-DNAPI_CPP_EXCEPTIONS', '-DNAPI_VERSION=8',
      `-I${path.join(nodedir, 'include', 'node')}`, `-I${napi}`, `-I${cudaInc}`,
      '-c', path.join(nativeDir, 'addon.cc'), '-o', obj('addon.cc'),
    ]),
  );
  const jobsLimit = Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 4));
  await pool(jobs, jobsLimit);
  const kernels = KERNEL_SOURCES.map(obj);
  await exec(nvcc, ['-shared', '-o', addonPath, obj('addon.cc'), ...kernels, '-cudart', 'static', ...GENCODE]);
  await exec(nvcc, ['-o', testPath, obj('gpu_test.cu'), ...kernels, '-cudart', 'static', '-ldl', ...GENCODE]);
  await exec(nvcc, ['-o', ltPath, obj('cusparselt_bench.cu'), obj('sparse24.cu'), '-cudart', 'static', '-ldl', ...GENCODE]);
  // The GPU code must be there for both architectures, in both binaries.
  const archs = {};
  for (const [name, file] of [['addon', addonPath], ['gpu_test', testPath]]) {
    archs[name] = cubinArchs(file);
    const missing = ARCHS.filter((a) => !archs[name].includes(a));
    if (missing.length) throw new BuildFailure(`${name} lacks cubins for sm_${missing.join(', sm_')} (has ${archs[name].join(', ') || 'none'})`);
  }
  writeFileSync(stampPath, JSON.stringify({ key, config, archs: ARCHS, embedded: archs, seconds: (Date.now() - started) / 1000 }, null, 2));
  console.log(`${PREFIX}: CUDA addon, gpu_test and cusparselt_bench built in ${Math.round((Date.now() - started) / 1000)} s (${version}; sm_${ARCHS.join(', sm_')})`);
}

try {
  await build();
} catch (err) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(logPath, log.join('\n'));
  if (err instanceof Skip) {
    console.log(`${PREFIX}: CUDA build skipped (${err.message}); the CPU and reference kernels stay in charge`);
    process.exit(require_ ? 1 : 0);
  }
  const reason = err instanceof BuildFailure ? err.message : `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
  console.error(`${PREFIX}: CUDA build failed (${reason}; log in ${path.relative(process.cwd(), logPath) || logPath}); the CPU and reference kernels stay in charge`);
  process.exit(require_ ? 1 : 0);
}
writeFileSync(logPath, log.join('\n'));
