// A full training step (forward, backward, Adam) of one MLP block, dense against sparse weights, side
// by side in one run: d = 1024, hidden = 4096 (up [4096, 1024], ReLU, down [1024, 4096]), 512 tokens
// per step, activations token-major ([tokens, features], as tfjs holds them).
//
// - dense: the registered native gemm for both forward products and all four gradient products,
//   then the native maskedAdam over every weight (a full bit mask: every entry active);
// - sparse: both weights in CSR with a fixed mask: linearCSR forward, sddmmCSR weight gradients at
//   the stored entries only, linearCSRGradInput input gradients, then maskedAdam over the packed
//   stored values and their moments only.
// Both paths run the same ReLU and ReLU backward. The candidates are interleaved rep by rep
// (tooling/bench/harness.mjs `compare`), at 0, 50, 80, 90, 95% unstructured sparsity and at 90% with a
// constant fan-in (every output row keeps the same number of inputs, as SRigL trains), and each is
// reported by its min and median. The density below which the sparse step is faster (the crossover)
// is interpolated from the unstructured points. Writes bench-results/sparse-step.json.
//
// Run: node kernels/cpu/bench/sparse-step.mjs (after building @sparse/tensor and @sparse/kernels-cpu),
// or import { sparseStepBench } and pass options. SPARSE_BENCH_QUICK=1 runs fewer repetitions.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { getKernel } from '@sparse/tensor';
import { nativeInfo, nativeStatus, registerCPUKernels } from '@sparse/kernels-cpu';
import { compare, printTable, writeResults } from '../../../tooling/bench/harness.mjs';

/** The CPU model and whether it has AVX-512F, from /proc/cpuinfo where there is one. */
function cpuDescription() {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? 'unknown';
    const flags = /^flags\s*:\s*(.*)$/m.exec(text)?.[1]?.split(/\s+/) ?? [];
    return { model, avx512f: flags.includes('avx512f'), avx2: flags.includes('avx2'), fma: flags.includes('fma') };
  } catch {
    return { model: 'unknown (no /proc/cpuinfo)', avx512f: null, avx2: null, fma: null };
  }
}

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

function uniform(n, scale, next) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (next() * 2 - 1) * scale;
  return a;
}

/**
 * A [rows, cols] CSR weight. Unstructured: every entry kept with probability 1 - sparsity.
 * Constant fan-in: every row keeps round((1 - sparsity) * cols) distinct columns, drawn uniformly.
 */
function makeCSR(rows, cols, sparsity, fanIn, next) {
  const indptr = new Int32Array(rows + 1);
  const keepPerRow = Math.round((1 - sparsity) * cols);
  const indices = [];
  const pool = Int32Array.from({ length: cols }, (_, j) => j);
  for (let i = 0; i < rows; i++) {
    if (fanIn) {
      // Partial Fisher-Yates: the first keepPerRow of a shuffled pool, then sorted.
      for (let k = 0; k < keepPerRow; k++) {
        const r = k + Math.floor(next() * (cols - k));
        const t = pool[k];
        pool[k] = pool[r];
        pool[r] = t;
      }
      const row = Array.from(pool.subarray(0, keepPerRow)).sort((x, y) => x - y);
      for (const j of row) indices.push(j);
    } else {
      for (let j = 0; j < cols; j++) if (next() >= sparsity) indices.push(j);
    }
    indptr[i + 1] = indices.length;
  }
  const nnz = indices.length;
  return {
    format: 'csr',
    shape: [rows, cols],
    dtype: 'float32',
    indptr,
    indices: Int32Array.from(indices),
    values: uniform(nnz, 1 / Math.sqrt(cols), next),
  };
}

/** Every entry active: the bit mask of maskedAdam with all `size` bits set. */
function allActive(size) {
  const bits = new Uint8Array(Math.ceil(size / 8)).fill(0xff);
  if (size % 8 !== 0) bits[bits.length - 1] = (1 << (size % 8)) - 1;
  return { bits };
}

/** Median of the phase times recorded over the timed repetitions. */
function phaseMedians(phases) {
  const out = {};
  for (const [name, times] of Object.entries(phases)) {
    const t = [...times].sort((a, b) => a - b);
    out[name] = t.length ? Number((t[t.length >> 1] * 1e3).toFixed(3)) : null;
  }
  return out;
}

/**
 * Runs the benchmark; returns the results object (also written to bench-results/sparse-step.json
 * unless `write` is false).
 * @param {{ d?: number, hidden?: number, tokens?: number, sparsities?: number[], fanInSparsities?: number[], reps?: number, warmup?: number, write?: boolean, log?: (line: string) => void }} [opts]
 */
export async function sparseStepBench(opts = {}) {
  const quick = process.env.SPARSE_BENCH_QUICK === '1';
  const {
    d = 1024,
    hidden = 4096,
    tokens = 512,
    sparsities = [0, 0.5, 0.8, 0.9, 0.95],
    fanInSparsities = [0.9],
    reps = quick ? 3 : 9,
    warmup = 2,
    write = true,
    log = (line) => console.log(line),
  } = opts;
  const started = Date.now();
  const cpu = cpuDescription();
  const reg = registerCPUKernels();
  if (!reg.native) {
    log(`native addon not available (${reg.reason}); nothing to benchmark`);
    const skipped = { skipped: reg.reason, cpu };
    if (write) writeResults('sparse-step', skipped);
    return skipped;
  }
  const info = nativeInfo();
  const addon = nativeStatus().addon;
  log(`CPU: ${cpu.model}; avx512f in /proc/cpuinfo: ${cpu.avx512f === null ? 'unknown' : cpu.avx512f ? 'yes' : 'no'}; avx2: ${cpu.avx2 ? 'yes' : 'no'}`);
  log(`addon: ISA path ${info.simd}, ${info.threads} threads, dense gemm ${info.blas === 'openblas' ? 'OpenBLAS' : "the addon's own blocked gemm"}`);
  log(`block: d ${d}, hidden ${hidden}, ${tokens} tokens per step; ${reps} timed repetitions after ${warmup} warm-up, candidates interleaved`);

  const K = (name) => getKernel(name, 'sparse-cpu');
  const gemm = K('gemm');
  const linear = K('linearCSR');
  const gradInput = K('linearCSRGradInput');
  const sddmm = K('sddmmCSR');
  const adam = K('maskedAdam');

  const next = mulberry(20240611);
  const x = uniform(tokens * d, 1, next);
  const dy = uniform(tokens * d, 1e-2, next);
  // Activations and gradients shared by both paths (each step overwrites them).
  const hPre = new Float32Array(tokens * hidden);
  const act = new Float32Array(tokens * hidden);
  const dAct = new Float32Array(tokens * hidden);
  const y = new Float32Array(tokens * d);
  const dx = new Float32Array(tokens * d);

  const relu = () => addon.elementwiseUnary(6, hPre, act);
  // dH = dA * (H > 0), in place in dAct, on the bits: the float H is > 0 exactly when its int32 bit
  // pattern is > 0 (no NaN arises here), and ~(((h - 1) | h) >> 31) is then all ones, else 0 (-0.0,
  // whose pattern is INT32_MIN, included). Branch-free, as the signs of H are random.
  const hBits = new Int32Array(hPre.buffer);
  const dBits = new Int32Array(dAct.buffer);
  const reluBackward = () => {
    for (let i = 0; i < dBits.length; i++) {
      const h = hBits[i];
      dBits[i] &= ~(((h - 1) | h) >> 31);
    }
  };
  const gemmCall = (transA, transB, m, n, k, a, lda, b, ldb, c, ldc) =>
    gemm({ transA, transB, m, n, k, alpha: 1, a, aOffset: 0, lda, b, bOffset: 0, ldb, beta: 0, c, cOffset: 0, ldc });

  // ---- dense path ----
  const w1 = uniform(hidden * d, 1 / Math.sqrt(d), next);
  const w2 = uniform(d * hidden, 1 / Math.sqrt(hidden), next);
  const g1 = new Float32Array(hidden * d);
  const g2 = new Float32Array(d * hidden);
  const dense = {
    m1: new Float32Array(hidden * d),
    v1: new Float32Array(hidden * d),
    m2: new Float32Array(d * hidden),
    v2: new Float32Array(d * hidden),
    all: allActive(hidden * d),
    step: 0,
  };
  const densePhases = { forward: [], backward: [], adam: [] };
  let recordDense = false;
  function denseStep() {
    const t0 = performance.now();
    gemmCall(false, true, tokens, hidden, d, x, d, w1, d, hPre, hidden); // H = X W1^T
    relu();
    gemmCall(false, true, tokens, d, hidden, act, hidden, w2, hidden, y, d); // Y = A W2^T
    const t1 = performance.now();
    gemmCall(true, false, d, hidden, tokens, dy, d, act, hidden, g2, hidden); // dW2 = dY^T A
    gemmCall(false, false, tokens, hidden, d, dy, d, w2, hidden, dAct, hidden); // dA = dY W2
    reluBackward();
    gemmCall(true, false, hidden, d, tokens, dAct, hidden, x, d, g1, d); // dW1 = dH^T X
    gemmCall(false, false, tokens, d, hidden, dAct, hidden, w1, d, dx, d); // dX = dH W1
    const t2 = performance.now();
    dense.step++;
    adam({ params: w1, grads: g1, active: dense.all, m: dense.m1, v: dense.v1, step: dense.step, lr: 1e-3 });
    adam({ params: w2, grads: g2, active: dense.all, m: dense.m2, v: dense.v2, step: dense.step, lr: 1e-3 });
    const t3 = performance.now();
    if (recordDense) {
      densePhases.forward.push((t1 - t0) / 1e3);
      densePhases.backward.push((t2 - t1) / 1e3);
      densePhases.adam.push((t3 - t2) / 1e3);
    }
  }

  // ---- sparse path ----
  function sparseModel(sparsity, fanIn, seed) {
    const r = mulberry(seed);
    const up = makeCSR(hidden, d, sparsity, fanIn, r);
    const down = makeCSR(d, hidden, sparsity, fanIn, r);
    const n1 = up.indptr[hidden];
    const n2 = down.indptr[d];
    return {
      up,
      down,
      nnz: n1 + n2,
      density: (n1 + n2) / (2 * hidden * d),
      g1: new Float32Array(n1),
      g2: new Float32Array(n2),
      m1: new Float32Array(n1),
      v1: new Float32Array(n1),
      m2: new Float32Array(n2),
      v2: new Float32Array(n2),
      all1: allActive(n1),
      all2: allActive(n2),
      step: 0,
      phases: { forward: [], backward: [], adam: [] },
    };
  }
  let recordSparse = false;
  function sparseStep(s) {
    const t0 = performance.now();
    linear({ w: s.up, tokens, alpha: 1, x, xOffset: 0, ldx: d, beta: 0, y: hPre, yOffset: 0, ldy: hidden });
    relu();
    linear({ w: s.down, tokens, alpha: 1, x: act, xOffset: 0, ldx: hidden, beta: 0, y, yOffset: 0, ldy: d });
    const t1 = performance.now();
    sddmm({ pattern: s.down, tokens, alpha: 1, dy, dyOffset: 0, lddy: d, x: act, xOffset: 0, ldx: hidden, beta: 0, out: s.g2, outOffset: 0 });
    gradInput({ w: s.down, tokens, alpha: 1, dy, dyOffset: 0, lddy: d, beta: 0, dx: dAct, dxOffset: 0, lddx: hidden });
    reluBackward();
    sddmm({ pattern: s.up, tokens, alpha: 1, dy: dAct, dyOffset: 0, lddy: hidden, x, xOffset: 0, ldx: d, beta: 0, out: s.g1, outOffset: 0 });
    gradInput({ w: s.up, tokens, alpha: 1, dy: dAct, dyOffset: 0, lddy: hidden, beta: 0, dx, dxOffset: 0, lddx: d });
    const t2 = performance.now();
    s.step++;
    adam({ params: s.up.values, grads: s.g1, active: s.all1, m: s.m1, v: s.v1, step: s.step, lr: 1e-3 });
    adam({ params: s.down.values, grads: s.g2, active: s.all2, m: s.m2, v: s.v2, step: s.step, lr: 1e-3 });
    const t3 = performance.now();
    if (recordSparse) {
      s.phases.forward.push((t1 - t0) / 1e3);
      s.phases.backward.push((t2 - t1) / 1e3);
      s.phases.adam.push((t3 - t2) / 1e3);
    }
  }

  const configs = [
    ...sparsities.map((sp) => ({ name: `${Math.round(sp * 100)}% unstructured`, sparsity: sp, fanIn: false })),
    ...fanInSparsities.map((sp) => ({ name: `${Math.round(sp * 100)}% constant fan-in`, sparsity: sp, fanIn: true })),
  ];
  const rows = [];
  for (const [c, cfg] of configs.entries()) {
    const s = sparseModel(cfg.sparsity, cfg.fanIn, 1000 + c);
    for (let i = 0; i < warmup; i++) {
      denseStep();
      sparseStep(s);
    }
    recordDense = recordSparse = true;
    densePhases.forward.length = densePhases.backward.length = densePhases.adam.length = 0;
    const r = await compare({ dense: denseStep, sparse: () => sparseStep(s) }, { reps, warmup: 0 });
    recordDense = recordSparse = false;
    const row = {
      config: cfg.name,
      sparsity: cfg.sparsity,
      constantFanIn: cfg.fanIn,
      density: Number(s.density.toFixed(4)),
      nnz: s.nnz,
      denseMinMs: Number((r.dense.min * 1e3).toFixed(2)),
      denseMedianMs: Number((r.dense.median * 1e3).toFixed(2)),
      sparseMinMs: Number((r.sparse.min * 1e3).toFixed(2)),
      sparseMedianMs: Number((r.sparse.median * 1e3).toFixed(2)),
      speedupMedian: Number((r.dense.median / r.sparse.median).toFixed(3)),
      speedupMin: Number((r.dense.min / r.sparse.min).toFixed(3)),
      densePhasesMs: phaseMedians(densePhases),
      sparsePhasesMs: phaseMedians(s.phases),
    };
    rows.push(row);
    log(
      `${cfg.name.padEnd(22)} density ${row.density.toFixed(3)}: dense ${row.denseMedianMs} ms (min ${row.denseMinMs}), sparse ${row.sparseMedianMs} ms (min ${row.sparseMinMs}): ${row.speedupMedian.toFixed(2)}x (min/min ${row.speedupMin.toFixed(2)}x); sparse fwd/bwd/adam ${row.sparsePhasesMs.forward}/${row.sparsePhasesMs.backward}/${row.sparsePhasesMs.adam} ms, dense ${row.densePhasesMs.forward}/${row.densePhasesMs.backward}/${row.densePhasesMs.adam} ms`,
    );
  }

  // Crossover: the density where the sparse step becomes as slow as the dense one, between the two
  // measured unstructured points around it. The sparse step's time is close to affine in the density
  // (every product scales with the stored entries, plus fixed costs) and the dense one's constant, so
  // both median times are interpolated linearly and the crossing of the two lines is reported.
  const unstructured = rows.filter((r) => !r.constantFanIn).sort((a, b) => a.density - b.density);
  let crossover = { density: null, sparsity: null, note: '' };
  const firstSlower = unstructured.findIndex((r) => r.speedupMedian < 1);
  if (unstructured.length === 0) {
    crossover.note = 'no unstructured points measured';
  } else if (firstSlower === -1) {
    crossover.note = `the sparse step is faster at every measured density (up to ${unstructured.at(-1).density})`;
  } else if (firstSlower === 0) {
    crossover.note = `the sparse step is slower at every measured density (from ${unstructured[0].density})`;
  } else {
    const a = unstructured[firstSlower - 1];
    const b = unstructured[firstSlower];
    // sparse(u) = dense(u) for u in [0, 1] between a and b.
    const u = (a.denseMedianMs - a.sparseMedianMs) / (b.sparseMedianMs - a.sparseMedianMs - (b.denseMedianMs - a.denseMedianMs));
    const dens = a.density + u * (b.density - a.density);
    crossover = {
      density: Number(dens.toFixed(3)),
      sparsity: Number((1 - dens).toFixed(3)),
      note: `median step times interpolated linearly between densities ${a.density} (${a.speedupMedian}x) and ${b.density} (${b.speedupMedian}x)`,
    };
  }

  const at = (sp) => rows.find((r) => !r.constantFanIn && Math.abs(r.sparsity - sp) < 1e-9);
  const goals = [];
  for (const [sp, goal] of [
    [0.9, 2.5],
    [0.8, 1.5],
  ]) {
    const row = at(sp);
    if (!row) continue;
    goals.push({ goal: `sparse step vs dense step at ${sp * 100}% unstructured`, measured: `${row.speedupMedian.toFixed(2)}x`, target: `>= ${goal}x`, reached: row.speedupMedian >= goal ? 'yes' : 'NO' });
  }

  log('');
  printTable(rows.map((r) => ({ config: r.config, density: r.density, 'dense min ms': r.denseMinMs, 'dense med ms': r.denseMedianMs, 'sparse min ms': r.sparseMinMs, 'sparse med ms': r.sparseMedianMs, 'speedup (med)': r.speedupMedian })));
  log('');
  for (const g of goals) log(`${g.goal}: ${g.measured} / ${g.target} / ${g.reached === 'yes' ? 'reached' : 'NOT reached'}`);
  log(`crossover: ${crossover.density === null ? crossover.note : `the sparse step is faster below density ${crossover.density} (above ${(crossover.sparsity * 100).toFixed(1)}% sparsity; ${crossover.note})`}`);

  const results = {
    cpu,
    native: { simd: info.simd, threads: info.threads, blas: info.blas },
    shape: { d, hidden, tokens, activation: 'relu' },
    reps,
    warmup,
    rows,
    goals,
    crossover,
    seconds: (Date.now() - started) / 1000,
  };
  if (write) log(`wrote ${writeResults('sparse-step', results)}`);
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await sparseStepBench();
}
