// `pnpm bench kernels`: the native kernels of @sparse/kernels-cpu against their dense baselines and
// against tfjs, every figure a ratio (or rate) measured side by side in one run: candidates are
// interleaved rep by rep (tooling/bench/harness.mjs `compare`) and summarized by their medians.
// Writes bench-results/kernels.json and prints a table with each figure next to its performance target.
//
// Environment: SPARSE_BENCH_QUICK=1 runs fewer repetitions (a smoke test of the script).
// OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it loads; these machines set them (to
// Haswell) for old OpenBLAS bugs, which would make the OpenBLAS column its AVX2 kernel rather than its
// best. So the bench runs itself again without them, and prints the core OpenBLAS picked.
import { spawnSync } from 'node:child_process';
if (process.env.OPENBLAS_CORETYPE !== undefined || process.env.OPENBLAS_L2_SIZE !== undefined) {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}
import { readFileSync } from 'node:fs';
import { compare, pairedRatio, printTable, writeResults } from '../../../tooling/bench/harness.mjs';
import { getKernel, tensor, toBSR, toCSR, toNM } from '@sparse/tensor';
import { gemmBlockedNative, gemmOpenBLASNative, nativeInfo, nativeStatus, registerCPUKernels } from '@sparse/kernels-cpu';
import { GPT_CONFIG, initGPT, loadTfWithGradients, makeTrainer } from './gpt.mjs';

const QUICK = process.env.SPARSE_BENCH_QUICK === '1';
const REPS = QUICK ? 2 : 5;
const started = Date.now();
const log = (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${line}`);

const reg = registerCPUKernels();
if (!reg.native) {
  console.log(`native addon not available (${reg.reason}); nothing to benchmark`);
  writeResults('kernels', { skipped: reg.reason });
  process.exit(0);
}
const info = nativeInfo();
const native = (name) => getKernel(name, 'sparse-cpu');
// Our own dense gemm, and OpenBLAS's when the addon was linked against it: every dense and sparse
// figure is reported against both.
const ownGemm = gemmBlockedNative();
const openblasGemm = info.blas === 'openblas' ? gemmOpenBLASNative() : null;
const NO_OPENBLAS = 'n/a (built without OpenBLAS)';

// ---- machine peak ----
function machinePeak() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const mhz = [...cpuinfo.matchAll(/^cpu MHz\s*:\s*([\d.]+)/gm)].map((m) => Number(m[1]));
  const flags = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.split(/\s+/) ?? [];
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown CPU';
  const ghz = (mhz.length ? Math.max(...mhz) : 0) / 1000;
  const lanes = flags.includes('avx512f') ? 16 : flags.includes('avx2') ? 8 : 4;
  const fmaUnits = 2;
  const cores = info.threads;
  return { model, cores, lanes, fmaUnits, ghz, gflops: cores * lanes * fmaUnits * 2 * ghz };
}
const peak = machinePeak();
log(
  `machine peak: ${peak.cores} cores x ${peak.lanes} fp32 lanes x ${peak.fmaUnits} FMA units x 2 flops x ${peak.ghz.toFixed(2)} GHz = ${peak.gflops.toFixed(1)} GFLOP/s (${peak.model}; addon: ${info.simd}, ${info.threads} threads, blas ${info.blas}${info.blasCore ? ` core ${info.blasCore}, picked without OPENBLAS_CORETYPE` : ''})`,
);
log(`kernel families: ${Object.entries(info.kernelIsa).map(([k, v]) => `${k} ${v}`).join(', ')}${info.isaNote ? ` (${info.isaNote})` : ''}`);

// ---- helpers ----
function mulberry(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randomArray(n, seed) {
  const next = mulberry(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = next() * 2 - 1;
  return a;
}
const gflops = (flops, seconds) => flops / seconds / 1e9;
const ms = (s) => Number((s * 1e3).toFixed(2));

function gemmArgs(m, n, k, a, b, c) {
  return { transA: false, transB: false, m, n, k, alpha: 1, a, aOffset: 0, lda: k, b, bOffset: 0, ldb: n, beta: 0, c, cOffset: 0, ldc: n };
}

const results = { peak, native: info, gemm: [], sparse: [], gemv: [], attention: [], training: null, notes: [] };
const targets = [];
function target(what, value, goal, unit = 'x') {
  targets.push({ target: what, measured: `${value.toFixed(2)}${unit}`, goal: `>= ${goal}${unit}`, reached: value >= goal ? 'yes' : 'NO' });
}

// ---- 1. dense gemm: native vs tfjs-backend-cpu and tfjs-backend-wasm ----
const tfjs = await loadTfWithGradients();
await import('@tensorflow/tfjs-backend-wasm');
let wasmOk = true;
try {
  await tfjs.setBackend('wasm');
  await tfjs.ready();
} catch (err) {
  wasmOk = false;
  results.notes.push(`tfjs-backend-wasm unavailable: ${String(err).split('\n')[0]}`);
}
// The plain-JS tfjs CPU backend prints an "install tfjs-node" banner on its first tensor.
tfjs.env().set('PROD', true);
await tfjs.setBackend('cpu');
tfjs.dispose(tfjs.scalar(0));
tfjs.env().set('PROD', false);

/** A tfjs matMul of fixed operands on `backend`, awaiting the result each call. */
async function tfjsMatMul(backend, m, n, k, a, b) {
  await tfjs.setBackend(backend);
  const ta = tfjs.tensor2d(a, [m, k]);
  const tb = tfjs.tensor2d(b, [k, n]);
  return {
    async run() {
      if (tfjs.getBackend() !== backend) await tfjs.setBackend(backend);
      const c = tfjs.matMul(ta, tb);
      await c.data();
      c.dispose();
    },
    dispose() {
      tfjs.dispose([ta, tb]);
    },
  };
}

const GEMM_SHAPES = [
  { name: '1024^3', m: 1024, n: 1024, k: 1024, tfjsCpu: true, wasm: true },
  { name: '2048^3', m: 2048, n: 2048, k: 2048, tfjsCpu: false, wasm: true },
  { name: 'W 4096x4096 x 256 tokens', m: 4096, n: 256, k: 4096, tfjsCpu: false, wasm: true },
];
results.notes.push('tfjs-backend-cpu matMul is timed on 1024^3 only: at under 1 GFLOP/s the larger shapes take minutes per repetition');
results.notes.push(`'own' is the addon's blocked gemm (${info.kernelIsa.gemm} kernels); the registered gemm is OpenBLAS when linked (except gemv-like shapes), else own`);
if (!openblasGemm) results.notes.push(`OpenBLAS: ${NO_OPENBLAS}; install libopenblas-dev and rebuild the addon to add the OpenBLAS columns`);
results.notes.push("sparse speedups ('x own dense', 'x OpenBLAS', 'x best dense') are paired: the median over reps of each rep's dense time over the same rep's sparse time (the candidates interleaved, each rep starting at the next one); the ms columns are medians, and 'x best (medians)' is the ratio of medians");
for (const s of GEMM_SHAPES) {
  const a = randomArray(s.m * s.k, 1);
  const b = randomArray(s.k * s.n, 2);
  const c = new Float32Array(s.m * s.n);
  const flops = 2 * s.m * s.n * s.k;
  const args = gemmArgs(s.m, s.n, s.k, a, b, c);
  const cands = { native: () => ownGemm(args) };
  if (openblasGemm) cands.openblas = () => openblasGemm(args);
  const opened = [];
  if (s.tfjsCpu) {
    const t = await tfjsMatMul('cpu', s.m, s.n, s.k, a, b);
    opened.push(t);
    cands.tfjsCpu = t.run;
  }
  if (s.wasm && wasmOk) {
    const t = await tfjsMatMul('wasm', s.m, s.n, s.k, a, b);
    opened.push(t);
    cands.tfjsWasm = t.run;
  }
  const slow = s.tfjsCpu ? { reps: 3, warmup: 1 } : { reps: REPS, warmup: 1 };
  const r = await compare(cands, slow);
  opened.forEach((t) => t.dispose());
  const row = {
    shape: s.name,
    nativeMs: ms(r.native.median),
    nativeGflops: gflops(flops, r.native.median),
    percentOfPeak: (100 * gflops(flops, r.native.median)) / peak.gflops,
    openblasGflops: r.openblas ? gflops(flops, r.openblas.median) : null,
    openblasPercentOfPeak: r.openblas ? (100 * gflops(flops, r.openblas.median)) / peak.gflops : null,
    ownVsOpenblas: r.openblas ? r.openblas.median / r.native.median : null,
    tfjsCpuGflops: r.tfjsCpu ? gflops(flops, r.tfjsCpu.median) : null,
    vsTfjsCpu: r.tfjsCpu ? r.tfjsCpu.median / r.native.median : null,
    tfjsWasmGflops: r.tfjsWasm ? gflops(flops, r.tfjsWasm.median) : null,
    vsTfjsWasm: r.tfjsWasm ? r.tfjsWasm.median / r.native.median : null,
  };
  results.gemm.push(row);
  log(
    `gemm ${s.name}: own ${row.nativeGflops.toFixed(1)} GFLOP/s (${row.percentOfPeak.toFixed(0)}% of peak)` +
      (row.openblasGflops ? `, OpenBLAS ${row.openblasGflops.toFixed(1)} GFLOP/s (${row.openblasPercentOfPeak.toFixed(0)}% of peak)` : `, OpenBLAS ${NO_OPENBLAS}`) +
      (row.vsTfjsCpu ? `, ${row.vsTfjsCpu.toFixed(0)}x tfjs-backend-cpu (${row.tfjsCpuGflops.toFixed(2)} GFLOP/s)` : ', tfjs-backend-cpu not timed (too slow)') +
      (row.vsTfjsWasm ? `, ${row.vsTfjsWasm.toFixed(1)}x tfjs-backend-wasm (${row.tfjsWasmGflops.toFixed(1)} GFLOP/s)` : ''),
  );
}
target('own dense gemm % of peak (best shape)', Math.max(...results.gemm.map((r) => r.percentOfPeak)), 50, '%');
for (const r of results.gemm) if (r.ownVsOpenblas !== null) target(`own dense gemm vs OpenBLAS (${info.blasCore}) ${r.shape}`, r.ownVsOpenblas, 0.9);
if (openblasGemm) target('OpenBLAS dense gemm % of peak (best shape)', Math.max(...results.gemm.map((r) => r.openblasPercentOfPeak)), 50, '%');
target('own dense gemm vs tfjs-backend-cpu (1024^3)', results.gemm[0].vsTfjsCpu ?? 0, 30);

// ---- 2. sparse x dense products vs the best dense: 4096 x 4096 weight x 256 tokens, and 2:4 at LLM shapes ----
// "Best dense" is the faster of our gemm and OpenBLAS (its own CPU detection), rep by rep medians.
{
  const spmmArgs = (kernel, a, b, c, n) => () => native(kernel)({ a, b, bOffset: 0, ldb: n, n, alpha: 1, beta: 0, c, cOffset: 0, ldc: n });
  function pruned(wDense, M, K, keepFn) {
    const w = wDense.slice();
    for (let i = 0; i < M; i++) for (let j = 0; j < K; j++) if (!keepFn(i, j)) w[i * K + j] = 0;
    return tensor(w, [M, K]);
  }
  /** Two random positions of every group of four. */
  function keep24(M, K, seed) {
    const next = mulberry(seed);
    const keep = new Uint8Array(M * K);
    for (let g = 0; g < (M * K) / 4; g++) {
      const first = Math.floor(next() * 4);
      const second = (first + 1 + Math.floor(next() * 3)) % 4;
      keep[g * 4 + first] = 1;
      keep[g * 4 + second] = 1;
    }
    return keep;
  }
  const shapes = [
    { M: 4096, K: 4096, N: 256, all: true },
    { M: 11008, K: 4096, N: 256, all: false },
    { M: 11008, K: 4096, N: 2048, all: false },
  ];
  for (const { M, K, N, all } of shapes) {
    const b = randomArray(K * N, 3);
    const c = new Float32Array(M * N);
    const wDense = randomArray(M * K, 4);
    const denseArgs = gemmArgs(M, N, K, wDense, b, c);
    const baselines = { own: () => ownGemm(denseArgs) };
    if (openblasGemm) baselines.openblas = () => openblasGemm(denseArgs);
    const cases = [];
    {
      const keep = keep24(M, K, 5);
      cases.push({ name: 'spmmNM 2:4', kernel: 'spmmNM', layout: () => toNM(pruned(wDense, M, K, (i, j) => keep[i * K + j] === 1), { n: 2, m: 4 }), goal: 1.5 });
    }
    if (all) {
      for (const sparsity of [0.5, 0.7, 0.9, 0.95]) {
        const next = mulberry(Math.round(sparsity * 1000));
        cases.push({ name: `spmmCSR ${sparsity * 100}%`, kernel: 'spmmCSR', layout: () => toCSR(pruned(wDense, M, K, () => next() >= sparsity)), goal: sparsity === 0.9 ? 3 : undefined });
      }
      for (const sparsity of [0.5, 0.75, 0.9]) {
        const next = mulberry(Math.round(sparsity * 777));
        const bs = 32;
        const keepBlock = new Uint8Array((M / bs) * (K / bs)).map(() => (next() >= sparsity ? 1 : 0));
        cases.push({
          name: `spmmBlock 32x32 ${sparsity * 100}%`,
          kernel: 'spmmBlock',
          layout: () => toBSR(pruned(wDense, M, K, (i, j) => keepBlock[Math.floor(i / bs) * (K / bs) + Math.floor(j / bs)] === 1), { blockShape: [bs, bs] }),
          goal: sparsity === 0.9 ? 6 : undefined,
        });
      }
    }
    for (const cs of cases) {
      const a = cs.layout();
      const r = await compare({ ...baselines, sparse: spmmArgs(cs.kernel, a, b, c, N) }, { reps: QUICK ? 2 : N >= 2048 ? 5 : 9, warmup: 1 });
      const best = r.openblas ? Math.min(r.own.median, r.openblas.median) : r.own.median;
      // The speedups are paired: each rep's sparse time against the same rep's dense times (median of
      // those ratios), so a stretch of the shared machine running slow hits both sides of a ratio.
      const dense = Object.keys(baselines);
      const row = {
        kernel: cs.name,
        shape: `${M}x${K} x ${N}`,
        sparseMs: ms(r.sparse.median),
        ownMs: ms(r.own.median),
        openblasMs: r.openblas ? ms(r.openblas.median) : null,
        speedupVsOwn: pairedRatio(r, ['own'], 'sparse'),
        speedupVsOpenblas: r.openblas ? pairedRatio(r, ['openblas'], 'sparse') : null,
        speedupVsBestDense: pairedRatio(r, dense, 'sparse'),
        // the same against the medians (ratio of medians), for comparison
        speedupVsBestDenseOfMedians: best / r.sparse.median,
        // unrounded medians, for the strictest-dense figure of section 4c
        medians: { sparse: r.sparse.median, own: r.own.median, best },
        ...(cs.goal ? { goal: cs.goal } : {}),
      };
      results.sparse.push(row);
      log(
        `${cs.name} ${row.shape}: ${row.sparseMs} ms; ${row.speedupVsOwn.toFixed(2)}x own dense (${row.ownMs} ms), ` +
          (r.openblas ? `${row.speedupVsOpenblas.toFixed(2)}x OpenBLAS (${row.openblasMs} ms)` : `OpenBLAS ${NO_OPENBLAS}`) +
          `, ${row.speedupVsBestDense.toFixed(2)}x best dense (paired; ${row.speedupVsBestDenseOfMedians.toFixed(2)}x as a ratio of medians)`,
      );
      if (cs.goal) target(`${cs.name} ${row.shape} vs best dense`, row.speedupVsBestDense, cs.goal);
    }
  }
}

// ---- 3. gemvSparseInput vs dense gemv (4096 x 4096 weight, one activation vector) ----
{
  const R = 4096;
  const C = 4096;
  const w = randomArray(R * C, 6);
  const y = new Float32Array(R);
  const gemm = native('gemm');
  const sparseGemv = native('gemvSparseInput');
  for (const transW of [true, false]) {
    for (const zeros of [0.5, 0.75]) {
      const next = mulberry(Math.round(zeros * 100) + (transW ? 1 : 0));
      const xDense = randomArray(C, 7);
      const x = xDense.slice();
      for (let p = 0; p < C; p++) if (next() < zeros) x[p] = 0;
      // Dense gemv: the native gemm with n = 1 (W stored [out, in], or [in, out] read transposed);
      // and the same streaming kernel with no zero input, which isolates what skipping saves.
      const denseArgs = { transA: transW, transB: false, m: R, n: 1, k: C, alpha: 1, a: w, aOffset: 0, lda: transW ? R : C, b: x, bOffset: 0, ldb: 1, beta: 0, c: y, cOffset: 0, ldc: 1 };
      const sparseArgs = { transW, rows: R, cols: C, n: 1, alpha: 1, w, wOffset: 0, ldw: transW ? R : C, x, xOffset: 0, ldx: 1, beta: 0, y, yOffset: 0, ldy: 1 };
      const r = await compare(
        { dense: () => gemm(denseArgs), denseInput: () => sparseGemv({ ...sparseArgs, x: xDense }), sparse: () => sparseGemv(sparseArgs) },
        { reps: QUICK ? 5 : 21, warmup: 3 },
      );
      const row = {
        layout: transW ? 'W stored [in, out]' : 'W stored [out, in]',
        zeroInputs: `${zeros * 100}%`,
        sparseMs: ms(r.sparse.median),
        denseMs: ms(r.dense.median),
        denseInputMs: ms(r.denseInput.median),
        speedup: r.dense.median / r.sparse.median,
        speedupVsDenseInput: r.denseInput.median / r.sparse.median,
      };
      results.gemv.push(row);
      log(
        `gemvSparseInput ${row.layout}, ${row.zeroInputs} zero inputs: ${row.sparseMs} ms; ${row.speedup.toFixed(2)}x dense gemv (${row.denseMs} ms), ${row.speedupVsDenseInput.toFixed(2)}x itself on a dense input (${row.denseInputMs} ms)`,
      );
    }
  }
  // Against the faster of the two dense baselines, in the better layout.
  const best50 = Math.max(...results.gemv.filter((r) => r.zeroInputs === '50%').map((r) => Math.min(r.speedup, r.speedupVsDenseInput)));
  target('gemvSparseInput 50% zero inputs vs dense gemv (best layout, stricter baseline)', best50, 1.6);
}

// ---- 4. block-sparse attention vs dense attention, seq 2048, head dim 64 ----
{
  const heads = 2;
  const seq = 2048;
  const d = 64;
  const bs = 64;
  const nb = seq / bs;
  const q = randomArray(heads * seq * d, 8);
  const k = randomArray(heads * seq * d, 9);
  const v = randomArray(heads * seq * d, 10);
  const out = new Float32Array(heads * seq * d);
  const base = { heads, seq, headDim: d, q, qOffset: 0, k, kOffset: 0, v, vOffset: 0, out, outOffset: 0, causal: false };
  const dense = native('denseAttention');
  const sparse = native('blockSparseAttention');
  for (const density of [0.5, 0.25, 0.1]) {
    const next = mulberry(Math.round(density * 100));
    // Each query block keeps round(density * nb) key blocks (its own included), so every row attends to something.
    const blockMask = new Uint8Array(nb * nb);
    const per = Math.max(1, Math.round(density * nb));
    for (let bi = 0; bi < nb; bi++) {
      const others = [...Array(nb).keys()].filter((j) => j !== bi).sort(() => next() - 0.5);
      for (const bj of [bi, ...others.slice(0, per - 1)]) blockMask[bi * nb + bj] = 1;
    }
    const r = await compare({ dense: () => dense(base), sparse: () => sparse({ ...base, blockSize: bs, blockMask }) }, { reps: REPS, warmup: 1 });
    const row = { blockDensity: density, seq, headDim: d, heads, blockSize: bs, sparseMs: ms(r.sparse.median), denseMs: ms(r.dense.median), speedup: r.dense.median / r.sparse.median };
    results.attention.push(row);
    log(`blockSparseAttention density ${density}: ${row.sparseMs} ms vs dense ${row.denseMs} ms = ${row.speedup.toFixed(2)}x`);
  }
  const denseFlops = 4 * heads * seq * seq * d;
  results.attentionDenseGflops = gflops(denseFlops, results.attention[0].denseMs / 1e3);
  log(`dense attention: ${results.attentionDenseGflops.toFixed(1)} GFLOP/s`);
  target('blockSparseAttention density 0.1 vs dense', results.attention.find((r) => r.blockDensity === 0.1).speedup, 6);
}

// ---- 4b. kernel families side by side: the same kernels under each family this machine runs ----
// The family is fixed when the addon loads, so each runs in a child process (SPARSE_CPU_ISA); the
// children alternate, three rounds, and each family keeps its fastest round.
{
  const built = new Set(info.cpu.built.split(','));
  const families = ['avx512', 'avx2'].filter((f) => built.has(f) && (f === 'avx2' ? info.cpu.avx2 : info.cpu.avx512));
  results.families = [];
  if (families.length < 2) {
    results.notes.push(`kernel families: only ${families.join(', ') || 'none'} runs here; no side-by-side`);
  } else {
    const addonPath = nativeStatus().path;
    const child = `
const addon = require(${JSON.stringify(addonPath)});
const rnd = (n, s) => { let x = s; return Float32Array.from({ length: n }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1); };
const best = (f, reps) => { f(); let b = Infinity; for (let r = 0; r < reps; r++) { const t = process.hrtime.bigint(); f(); b = Math.min(b, Number(process.hrtime.bigint() - t) / 1e6); } return b; };
const out = {};
for (const [m, n, k] of [[1024, 1024, 1024], [4096, 256, 4096]]) {
  const A = rnd(m * k, 1), B = rnd(k * n, 2), C = new Float32Array(m * n);
  out['gemm ' + m + 'x' + n + 'x' + k] = best(() => addon.gemmBlocked(false, false, m, n, k, 1, A, 0, k, B, 0, n, 0, C, 0, n), ${QUICK ? 2 : 7});
}
{
  const M = 4096, K = 4096, N = 256, count = M * K / 2;
  const val = rnd(count, 3), idx = new Uint8Array(count / 4);
  for (let q = 0; q < count; q += 2) { const a = q % 3, b = a + 1; idx[q >> 2] |= (a | (b << 2)) << ((q & 3) * 2); }
  const B = rnd(K * N, 4), C = new Float32Array(M * N);
  out['spmmNM 2:4 4096x4096 x 256'] = best(() => addon.spmmNM(M, K, 2, 4, 2, val, idx, N, 1, B, 0, N, 0, C, 0, N), ${QUICK ? 2 : 7});
}
console.log(JSON.stringify({ isa: addon.info().isa, out }));`;
    // Where the avx512 family runs the AVX2 N:M strips by default (CPUs that split 512-bit operations),
    // its own 16-wide strips are timed too (SPARSE_NM_WIDE=1).
    const variants = families.map((f) => ({ name: f, env: { SPARSE_CPU_ISA: f } }));
    if (info.cpu.split512 && families.includes('avx512')) variants.push({ name: 'avx512, 16-wide N:M strips', env: { SPARSE_CPU_ISA: 'avx512', SPARSE_NM_WIDE: '1' } });
    const runs = Object.fromEntries(variants.map((v) => [v.name, {}]));
    for (let round = 0; round < (QUICK ? 1 : 3); round++) {
      for (const v of variants) {
        const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', env: { ...process.env, ...v.env }, maxBuffer: 1 << 24 });
        if (r.status !== 0) throw new Error(`${v.name} child failed: ${r.stderr}`);
        const got = JSON.parse(r.stdout.trim().split('\n').at(-1));
        if (got.isa !== v.env.SPARSE_CPU_ISA) throw new Error(`asked for ${v.env.SPARSE_CPU_ISA}, the child ran ${got.isa}`);
        for (const [k, t] of Object.entries(got.out)) runs[v.name][k] = Math.min(runs[v.name][k] ?? Infinity, t);
      }
    }
    const [first, second] = families;
    for (const k of Object.keys(runs[first])) {
      const row = { kernel: k, ...Object.fromEntries(variants.map((v) => [`${v.name} ms`, ms(runs[v.name][k] / 1e3)])), [`${first} vs ${second}`]: runs[second][k] / runs[first][k] };
      results.families.push(row);
      log(`${k}: ${variants.map((v) => `${v.name} ${ms(runs[v.name][k] / 1e3)} ms`).join(', ')}; ${first} is ${(runs[second][k] / runs[first][k]).toFixed(2)}x ${second}`);
    }
    results.notes.push(`kernel families: spmmNM under avx512 runs the ${info.kernelIsa.spmmNM} strips here${info.cpu.split512 ? ' (this CPU splits 512-bit operations in two; the 16-wide strips are timed as their own variant)' : ''}`);
  }
}

// ---- 4c. OpenBLAS with its Haswell (AVX2) core ----
// "Best dense" above is the faster of ours and OpenBLAS with its own CPU detection, as the goals define
// it. On CPUs that split 512-bit operations in two (AMD Zen 4), OpenBLAS's AVX2 core can be the faster
// of its own kernels, so it is timed too: in a child process with OPENBLAS_CORETYPE=Haswell (the core is
// fixed when OpenBLAS loads), against our gemm in that same child, and carried over to this run as a
// ratio to our gemm. Each sparse goal is then also printed against the strictest dense of all three.
if (openblasGemm && info.cpu.avx2 && info.blasCore !== 'Haswell') {
  const addonPath = nativeStatus().path;
  const shapes = [
    ...GEMM_SHAPES.map((s) => ({ key: `gemm ${s.name}`, m: s.m, n: s.n, k: s.k })),
    ...results.sparse.map((r) => {
      const [mk, n] = r.shape.split(' x ');
      const [m, k] = mk.split('x').map(Number);
      return { key: `dense ${r.shape}`, m, n: Number(n), k };
    }),
  ].filter((s, i, all) => all.findIndex((t) => t.key === s.key) === i);
  const child = `
const addon = require(${JSON.stringify(addonPath)});
const rnd = (n, s) => { let x = s; return Float32Array.from({ length: n }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1); };
const time = (f) => { const t = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t) / 1e6; };
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const out = {};
for (const { key, m, n, k } of ${JSON.stringify(shapes)}) {
  const A = rnd(m * k, 1), B = rnd(k * n, 2), C = new Float32Array(m * n);
  const own = () => addon.gemmBlocked(false, false, m, n, k, 1, A, 0, k, B, 0, n, 0, C, 0, n);
  const blas = () => addon.gemmOpenBLAS(false, false, m, n, k, 1, A, 0, k, B, 0, n, 0, C, 0, n);
  own(); blas();
  const t = { own: [], blas: [] };
  const reps = n >= 2048 && m * k > 1 << 24 ? ${QUICK ? 1 : 3} : ${QUICK ? 2 : 5};
  for (let r = 0; r < reps; r++) { t.own.push(time(own)); t.blas.push(time(blas)); }
  out[key] = { ownMs: median(t.own), blasMs: median(t.blas) };
}
console.log(JSON.stringify({ core: addon.info().blasCore, out }));`;
  const env = { ...process.env, OPENBLAS_CORETYPE: 'Haswell' };
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    results.notes.push(`OpenBLAS Haswell core: the child failed (${r.stderr.trim().split('\n').at(-1)})`);
  } else {
    const got = JSON.parse(r.stdout.trim().split('\n').at(-1));
    results.openblasHaswell = { core: got.core, shapes: got.out };
    for (const s of GEMM_SHAPES) {
      const x = got.out[`gemm ${s.name}`];
      log(`gemm ${s.name}, OpenBLAS core ${got.core} (child process): ${gflops(2 * s.m * s.n * s.k, x.blasMs / 1e3).toFixed(1)} GFLOP/s, own gemm there ${gflops(2 * s.m * s.n * s.k, x.ownMs / 1e3).toFixed(1)} (own vs it ${(x.blasMs / x.ownMs).toFixed(2)}x)`);
    }
    for (const row of results.sparse) {
      const x = got.out[`dense ${row.shape}`];
      const haswell = row.medians.own * (x.blasMs / x.ownMs); // carried over as a ratio to our gemm
      row.openblasHaswellMs = ms(haswell);
      // the paired speedup, scaled down when the carried-over Haswell core beats this run's best dense
      row.speedupVsStrictestDense = row.speedupVsBestDense * Math.min(1, haswell / row.medians.best);
    }
    for (const row of results.sparse.filter((x) => x.speedupVsStrictestDense < x.speedupVsBestDense)) {
      log(`${row.kernel} ${row.shape}: ${row.speedupVsStrictestDense.toFixed(2)}x against OpenBLAS's ${got.core} core (${row.openblasHaswellMs} ms, carried over), which beats its own pick here`);
    }
    for (const row of results.sparse.filter((x) => x.goal)) {
      target(`${row.kernel} ${row.shape} vs strictest dense (incl. OpenBLAS ${got.core})`, row.speedupVsStrictestDense, row.goal);
    }
    results.notes.push(
      `OpenBLAS core ${got.core} timed in a child process against our gemm there; 'x strictest dense' takes the fastest of own, OpenBLAS (${info.blasCore}) and OpenBLAS (${got.core}, carried over as its ratio to our gemm)`,
    );
  }
}

// ---- 5. one training step of a small GPT: sparse-cpu vs plain cpu ----
{
  const { sparseCPURegistration } = await import('@sparse/kernels-cpu/tfjs');
  if (!sparseCPURegistration.registered) {
    results.notes.push(`sparse-cpu not registered: ${sparseCPURegistration.reason}`);
  } else {
    const init = initGPT();
    tfjs.env().set('PROD', true);
    const fast = await makeTrainer(tfjs, 'sparse-cpu', init);
    const slow = await makeTrainer(tfjs, 'cpu', init);
    const losses = { sparseCpu: [], cpu: [] };
    const r = await compare(
      {
        sparseCpu: async () => losses.sparseCpu.push(await fast.step()),
        cpu: async () => losses.cpu.push(await slow.step()),
      },
      { reps: QUICK ? 2 : 3, warmup: 1 },
    );
    fast.dispose();
    slow.dispose();
    const same = losses.sparseCpu.every((l, i) => Math.abs(l - losses.cpu[i]) <= 1e-4 * Math.abs(losses.cpu[i]));
    results.training = {
      model: GPT_CONFIG,
      sparseCpuMs: ms(r.sparseCpu.median),
      cpuMs: ms(r.cpu.median),
      speedup: r.cpu.median / r.sparseCpu.median,
      lossesAgree: same,
      losses,
    };
    log(`training step (GPT d ${GPT_CONFIG.d}, ${GPT_CONFIG.layers} layers, ctx ${GPT_CONFIG.t}, batch ${GPT_CONFIG.batch}): sparse-cpu ${results.training.sparseCpuMs} ms vs cpu ${results.training.cpuMs} ms = ${results.training.speedup.toFixed(1)}x (losses agree to 1e-4: ${same})`);
    target('training step sparse-cpu vs cpu', results.training.speedup, 10);
  }
}

console.log('');
for (const note of results.notes) console.log(`note: ${note}`);
console.log('');
printTable(
  results.gemm.map((r) => ({
    gemm: r.shape,
    'own GFLOP/s': r.nativeGflops,
    'own % peak': r.percentOfPeak,
    'OpenBLAS GFLOP/s': r.openblasGflops ?? NO_OPENBLAS,
    'OpenBLAS % peak': r.openblasPercentOfPeak ?? NO_OPENBLAS,
    'x tfjs-cpu': r.vsTfjsCpu ?? 'not timed',
    'x tfjs-wasm': r.vsTfjsWasm ?? 'n/a',
  })),
);
console.log('');
printTable(
  results.sparse.map((r) => ({
    kernel: r.kernel,
    shape: r.shape,
    ms: r.sparseMs,
    'own dense ms': r.ownMs,
    'x own dense': r.speedupVsOwn,
    'OpenBLAS ms': r.openblasMs ?? NO_OPENBLAS,
    'x OpenBLAS': r.speedupVsOpenblas ?? NO_OPENBLAS,
    'x best dense': r.speedupVsBestDense,
    'x best (medians)': r.speedupVsBestDenseOfMedians,
    ...(r.speedupVsStrictestDense !== undefined ? { 'x strictest dense': r.speedupVsStrictestDense } : {}),
  })),
);
console.log('');
printTable(
  results.gemv.map((r) => ({
    gemvSparseInput: r.layout,
    zeros: r.zeroInputs,
    ms: r.sparseMs,
    'gemm gemv ms': r.denseMs,
    'x gemm gemv': r.speedup,
    'dense-input ms': r.denseInputMs,
    'x dense input': r.speedupVsDenseInput,
  })),
);
console.log('');
printTable(results.attention.map((r) => ({ attention: `density ${r.blockDensity}`, ms: r.sparseMs, 'dense ms': r.denseMs, 'x dense': r.speedup })));
if (results.families.length > 0) {
  console.log('');
  printTable(results.families);
}
console.log('');
printTable(targets);
results.targets = targets;
results.seconds = (Date.now() - started) / 1000;
console.log(`\nwrote ${writeResults('kernels', results)} in ${results.seconds.toFixed(0)} s`);
