// The loader's fallback path (always runs), and the addon's run-time choices (scalar fallback kernel,
// thread cap, concurrent callers) in child processes when the addon is built.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fallbackMessage, loadNativeAddon, nativeStatus } from './native.js';
import { nativeSuite } from './__fixtures__/native-suite.js';

describe('native loader fallback', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sparse-loader-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports every candidate that failed and how to build, without throwing', () => {
    const missing = path.join(dir, 'missing', 'sparse_cpu.node');
    const bogus = path.join(dir, 'bogus.node');
    writeFileSync(bogus, 'not a shared object');
    const result = loadNativeAddon([missing, bogus]);
    expect(result.available).toBe(false);
    if (result.available) throw new Error('unreachable: checked above');
    expect(result.tried).toEqual([missing, bogus]);
    expect(result.reason).toContain(`${missing} does not exist`);
    expect(result.reason).toContain(`${bogus} failed to load`);
    expect(result.reason).toMatch(/build-native\.mjs --force|native-build\.log/);
  });

  it('rejects a module that is not the addon', () => {
    const fake = path.join(dir, 'fake.cjs');
    writeFileSync(fake, 'module.exports = { info() { return {}; } };');
    const result = loadNativeAddon([fake]);
    expect(result.available).toBe(false);
    if (result.available) throw new Error('unreachable: checked above');
    expect(result.reason).toContain('exports no gemm()');
  });

  it('formats the one-line fallback message', () => {
    const line = fallbackMessage('x does not exist');
    expect(line).toBe('@sparse/kernels-cpu: native addon not built (x does not exist); using the TypeScript reference kernels');
    expect(line).not.toContain('\n');
  });
});

const status = nativeStatus();
const suite = nativeSuite();

suite('native loader with the built addon', () => {
  it('falls through a bad candidate to a good one', () => {
    if (!status.available) throw new Error('unreachable: this suite runs only with the addon');
    const missing = path.join(os.tmpdir(), `sparse-loader-none-${process.pid}`, 'nope.node');
    const result = loadNativeAddon([missing, status.path]);
    expect(result.available).toBe(true);
    if (!result.available) throw new Error('unreachable: checked above');
    expect(result.path).toBe(status.path);
    expect(result.info).toEqual(status.info);
  });
});

/** Runs a CommonJS snippet in a fresh Node with `addon` bound to the built addon; returns its JSON output. */
function inChild(env: Record<string, string>, body: string): unknown {
  if (!status.available) throw new Error('unreachable');
  const script = `const addon = require(${JSON.stringify(status.path)});\n${body}`;
  // The child picks its family from `env` alone, not from a family this whole run was asked to use.
  const inherited = { ...process.env };
  delete inherited.SPARSE_CPU_ISA;
  delete inherited.SPARSE_EXPECT_ISA;
  delete inherited.SPARSE_NM_WIDE;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...inherited, ...env }, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// A float64 check of random gemms of every transpose combination, written for a child process.
const CHECK = `
let worst = 0;
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
for (const [m, n, k] of [[1, 40, 33], [3, 5, 300], [37, 41, 19], [150, 70, 260], [70, 2, 100], [25, 97, 300], [13, 33, 7]]) {
  for (const tA of [false, true]) for (const tB of [false, true]) {
    const lda = tA ? m : k, ldb = tB ? k : n;
    const A = Float32Array.from({ length: m * k }, rand), B = Float32Array.from({ length: k * n }, rand);
    const C = Float32Array.from({ length: m * n }, rand), C0 = C.slice();
    addon.gemm(tA, tB, m, n, k, 0.5, A, 0, lda, B, 0, ldb, 2, C, 0, n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0, abs = 0;
      for (let p = 0; p < k; p++) {
        const t = (tA ? A[p * lda + i] : A[i * lda + p]) * (tB ? B[j * ldb + p] : B[p * ldb + j]);
        s += t; abs += Math.abs(t);
      }
      const want = 0.5 * s + 2 * C0[i * n + j];
      const scale = 0.5 * abs + 2 * Math.abs(C0[i * n + j]);
      worst = Math.max(worst, Math.abs(C[i * n + j] - want) / (1e-6 * (k + 8) * scale + 1e-30));
    }
  }
}
`;

// The sparse kernels on a few random layouts (CSR sorted/unsorted, 2:4 and 3:5, BSR with edge
// blocks), against a float64 product of the same matrices, for a child process.
const CHECK_SPMM = `
let worstSp = 0;
let s2 = 7;
const r2 = () => ((s2 = (s2 * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
function compare(rows, cols, dense, n, run) {
  const B = Float32Array.from({ length: cols * n }, r2), C = Float32Array.from({ length: rows * n }, r2), C0 = C.slice();
  run(B, C);
  for (let i = 0; i < rows; i++) for (let j = 0; j < n; j++) {
    let s = 0, abs = 0, terms = 0;
    for (let p = 0; p < cols; p++) { const t = dense[i * cols + p] * B[p * n + j]; if (t !== 0) { s += t; abs += Math.abs(t); terms++; } }
    const want = 1.5 * s - 0.5 * C0[i * n + j];
    worstSp = Math.max(worstSp, Math.abs(C[i * n + j] - want) / (1e-6 * (terms + 8) * (1.5 * abs + 0.5 * Math.abs(C0[i * n + j])) + 1e-30));
  }
}
for (const n of [1, 13, 64, 70, 136, 256]) {
  for (const shuffle of [false, true]) {
    const rows = 23, cols = 300, dense = new Float64Array(rows * cols), indptr = new Int32Array(rows + 1), ind = [], val = [];
    for (let i = 0; i < rows; i++) {
      const row = []; for (let j = 0; j < cols; j++) if (r2() < -0.6) row.push(j);
      if (shuffle) row.reverse();
      for (const j of row) { const v = Math.fround(r2()); ind.push(j); val.push(v); dense[i * cols + j] = v; }
      indptr[i + 1] = ind.length;
    }
    compare(rows, cols, dense, n, (B, C) => addon.spmmCSR(rows, cols, indptr, Int32Array.from(ind), Float32Array.from(val), n, 1.5, B, 0, n, -0.5, C, 0, n));
  }
  for (const [keep, m, bits] of [[2, 4, 2], [3, 5, 3]]) {
    const rows = 9, groups = 40, cols = groups * m, dense = new Float64Array(rows * cols), count = rows * groups * keep;
    const val = new Float32Array(count), idx = new Uint8Array(Math.ceil((count * bits) / 8));
    let q = 0;
    for (let i = 0; i < rows; i++) for (let g = 0; g < groups; g++) for (let t = 0; t < keep; t++, q++) {
      const pos = t < keep - 1 ? t : keep - 1 + (g % (m - keep + 1));
      val[q] = Math.fround(r2()); dense[i * cols + g * m + pos] = val[q];
      for (let b = 0; b < bits; b++) if ((pos >> b) & 1) idx[(q * bits + b) >> 3] |= 1 << ((q * bits + b) & 7);
    }
    compare(rows, cols, dense, n, (B, C) => addon.spmmNM(rows, cols, keep, m, bits, val, idx, n, 1.5, B, 0, n, -0.5, C, 0, n));
  }
  {
    const rows = 20, cols = 30, br = 6, bc = 8, BR = Math.ceil(rows / br), BC = Math.ceil(cols / bc), dense = new Float64Array(rows * cols);
    const indptr = new Int32Array(BR + 1), ind = [], val = [];
    for (let I = 0; I < BR; I++) {
      for (let J = 0; J < BC; J++) {
        if (r2() < 0) continue;
        ind.push(J);
        for (let r = 0; r < br; r++) for (let c = 0; c < bc; c++) {
          const i = I * br + r, j = J * bc + c, inside = i < rows && j < cols, v = inside ? Math.fround(r2()) : NaN;
          val.push(v); if (inside) dense[i * cols + j] = v;
        }
      }
      indptr[I + 1] = ind.length;
    }
    compare(rows, cols, dense, n, (B, C) => addon.spmmBlock(rows, cols, br, bc, indptr, Int32Array.from(ind), Float32Array.from(val), n, 1.5, B, 0, n, -0.5, C, 0, n));
  }
}
`;

suite('native addon run-time configuration', () => {
  it('uses the scalar kernels when AVX2 is unavailable (forced with SPARSE_FORCE_SCALAR) and stays correct', () => {
    const out = inChild({ SPARSE_FORCE_SCALAR: '1' }, `${CHECK}\n${CHECK_SPMM}\nconsole.log(JSON.stringify({ info: addon.info(), worst, worstSp }));`) as {
      info: { simd: string };
      worst: number;
      worstSp: number;
    };
    expect(out.info.simd).toBe('scalar');
    expect(out.worst).toBeLessThanOrEqual(1);
    expect(out.worstSp).toBeLessThanOrEqual(1);
  });

  // Every kernel family this machine can run, in a child that asks for it with SPARSE_CPU_ISA; the
  // family that ran is checked, so a fallback never passes for the family it replaced. avx512-emu (the
  // 16-wide kernels built for AVX2) runs on any AVX2 machine; avx512 needs the hardware and is
  // reported skipped, with the reason, without it.
  const cpu = status.available ? status.info.cpu : undefined;
  const built = new Set((cpu?.built ?? '').split(','));
  // Kernels whose inner loops follow the selected family in every vector family (a 16-wide form for
  // avx512 / avx512-emu, the AVX2 one for avx2).
  const WIDE_FAMILY_KERNELS = ['gemm', 'spmmCSR', 'gemvSparseInput', 'maskedAdam', 'attention', 'attentionBackward', 'attentionBitmapKV', 'elementwiseBinary', 'elementwiseUnary', 'reduceLastAxis'];
  const families: { isa: string; runs: boolean; why: string }[] = [
    { isa: 'avx512', runs: built.has('avx512') && cpu?.avx512 === true, why: built.has('avx512') ? 'this CPU or OS lacks AVX-512 F/BW/VL' : 'the addon was built without the 16-wide kernels (not x86-64)' },
    { isa: 'avx512-emu', runs: built.has('avx512-emu') && cpu?.avx2 === true, why: built.has('avx512-emu') ? 'this CPU lacks AVX2+FMA' : 'the addon was built without the 16-wide kernels (not x86-64)' },
    { isa: 'avx2', runs: built.has('avx2') && cpu?.avx2 === true, why: built.has('avx2') ? 'this CPU lacks AVX2+FMA' : 'the addon was built without AVX2 kernels' },
  ];
  for (const f of families) {
    it.skipIf(!f.runs)(`runs the ${f.isa} kernels when SPARSE_CPU_ISA=${f.isa} asks for them, and stays correct${f.runs ? '' : ` (skipped: ${f.why})`}`, () => {
      const out = inChild({ SPARSE_CPU_ISA: f.isa }, `${CHECK}\n${CHECK_SPMM}\nconsole.log(JSON.stringify({ info: addon.info(), worst, worstSp }));`) as {
        info: { isa: string; isaNote: string; kernelIsa: Record<string, string> };
        worst: number;
        worstSp: number;
      };
      expect(out.info.isa, out.info.isaNote).toBe(f.isa);
      expect(out.info.kernelIsa.gemm).toBe(f.isa);
      for (const k of WIDE_FAMILY_KERNELS) expect(out.info.kernelIsa[k], k).toBe(f.isa);
      // On CPUs that split 512-bit operations (Zen 4) the avx512 family runs the AVX2 N:M strips.
      expect(out.info.kernelIsa.spmmNM).toBe(f.isa === 'avx512' && cpu?.split512 === true ? 'avx2' : f.isa);
      expect(out.worst).toBeLessThanOrEqual(1);
      expect(out.worstSp).toBeLessThanOrEqual(1);
    });
  }

  it('refuses a family the machine cannot run or that does not exist, says why, and keeps a working one', () => {
    const out = inChild({ SPARSE_CPU_ISA: 'avx1024' }, `console.log(JSON.stringify(addon.info()));`) as { isa: string; isaNote: string };
    const best = inChild({}, `console.log(JSON.stringify(addon.info()));`) as { isa: string; isaNote: string };
    expect(out.isaNote).toContain("SPARSE_CPU_ISA='avx1024' is not one of avx512, avx512-emu, avx2, scalar");
    expect(out.isa).toBe(best.isa);
    expect(best.isaNote).toBe('');
    if (cpu?.avx512 !== true) {
      const wide = inChild({ SPARSE_CPU_ISA: 'avx512' }, `console.log(JSON.stringify(addon.info()));`) as { isa: string; isaNote: string };
      expect(wide.isa).toBe(best.isa);
      expect(wide.isaNote).toContain('lacks AVX-512');
    }
  });

  // The whole test run under one family (scripts/test-isas.mjs sets these): what ran must be what was asked.
  it.runIf(process.env.SPARSE_EXPECT_ISA !== undefined)(`this process runs the family SPARSE_CPU_ISA asked for (${process.env.SPARSE_EXPECT_ISA ?? 'none asked'})`, () => {
    if (!status.available) throw new Error('the addon is not built');
    expect(status.info.isa, status.info.isaNote).toBe(process.env.SPARSE_EXPECT_ISA);
    for (const k of WIDE_FAMILY_KERNELS) expect(status.info.kernelIsa[k], k).toBe(process.env.SPARSE_EXPECT_ISA);
    if (process.env.SPARSE_NM_WIDE === '1') expect(status.info.kernelIsa.spmmNM).toBe(process.env.SPARSE_EXPECT_ISA);
  });

  it('caps its thread pool with SPARSE_NUM_THREADS and stays correct on one thread', () => {
    const out = inChild({ SPARSE_NUM_THREADS: '1' }, `${CHECK}\n${CHECK_SPMM}\nconsole.log(JSON.stringify({ info: addon.info(), worst, worstSp }));`) as {
      info: { threads: number };
      worst: number;
      worstSp: number;
    };
    expect(out.info.threads).toBe(1);
    expect(out.worst).toBeLessThanOrEqual(1);
    expect(out.worstSp).toBeLessThanOrEqual(1);
  });

  it('spmmNM keeps the SPARSE_NM_STRIP knob to strips its kernels take (too wide, too narrow, not whole vectors)', () => {
    for (const strip of ['4096', '1', '13']) {
      const out = inChild({ SPARSE_NM_STRIP: strip }, `${CHECK_SPMM}\nconsole.log(JSON.stringify({ worstSp }));`) as { worstSp: number };
      expect(out.worstSp, `SPARSE_NM_STRIP=${strip}`).toBeLessThanOrEqual(1);
    }
  });

  it('spmmNM stays correct when its columns are cut into many panels (SPARSE_NM_PANEL=1: one strip per panel)', () => {
    const out = inChild({ SPARSE_NM_PANEL: '1' }, `${CHECK_SPMM}\nconsole.log(JSON.stringify({ worstSp }));`) as { worstSp: number };
    expect(out.worstSp).toBeLessThanOrEqual(1);
  });

  it('gives correct results when several worker threads call it at once (the pool never oversubscribes)', () => {
    const body = `
const { Worker } = require('node:worker_threads');
const src = ${JSON.stringify(`const addon = require(${JSON.stringify(status.available ? status.path : '')});${CHECK}; require('node:worker_threads').parentPort.postMessage(worst);`)};
Promise.all([0, 1, 2].map(() => new Promise((resolve, reject) => {
  const w = new Worker(src, { eval: true });
  w.on('message', resolve);
  w.on('error', reject);
}))).then((worsts) => console.log(JSON.stringify(worsts)));
`;
    const worsts = inChild({}, body) as number[];
    expect(worsts).toHaveLength(3);
    for (const w of worsts) expect(w).toBeLessThanOrEqual(1);
  });
});
