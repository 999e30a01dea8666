// Loads the native addon. Like sharp, it tries each candidate in order, keeps every failure, and
// explains them in one line; unlike tfjs-node, a missing binary never throws: callers fall back to
// the TypeScript reference kernels.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the addon reports about itself. */
export interface NativeInfo {
  /**
   * Kernel family chosen at run time from the CPU's features (cpuid, and xgetbv for the OS's register
   * state), or a lower one forced with SPARSE_CPU_ISA: 'avx512' (16-wide kernels), 'avx512-emu' (the
   * same 16-wide kernels compiled for AVX2, chosen only through SPARSE_CPU_ISA, for testing), 'avx2'
   * or 'scalar'.
   */
  simd: NativeIsa;
  /** Same as `simd`. */
  isa: NativeIsa;
  /** The family each kernel's inner loops run: kernels without a 16-wide form run 'avx2' under either wide family. */
  kernelIsa: Record<string, NativeIsa | 'portable'>;
  /** Why the family differs from the one SPARSE_CPU_ISA asked for ('' when it does not). */
  isaNote: string;
  /**
   * What the CPU and OS support, whether it splits 512-bit operations into two halves (AMD Zen 4: the
   * avx512 family then runs spmmNM's AVX2 strips, which measured faster there), and the families
   * compiled into the addon (comma-separated).
   */
  cpu: { avx2: boolean; avx512: boolean; avx512bf16: boolean; avx512vnni: boolean; split512: boolean; built: string };
  /** Threads of the addon's pool (CPUs available to the process, capped by SPARSE_NUM_THREADS). */
  threads: number;
  /** 'openblas' when the addon was linked against OpenBLAS at build time (gemm then calls cblas_sgemm). */
  blas: 'openblas' | 'none';
  /** The core OpenBLAS runs (openblas_get_corename: 'Haswell', 'SkylakeX', 'Zen', ...); '' without OpenBLAS. */
  blasCore: string;
  /** Kernels the addon implements. */
  kernels: string[];
}

/** A kernel family of the addon, best first. */
export type NativeIsa = 'avx512' | 'avx512-emu' | 'avx2' | 'scalar';

/** gemm(transA, transB, m, n, k, alpha, A, aOffset, lda, B, bOffset, ldb, beta, C, cOffset, ldc). */
export type NativeGemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  aOffset: number,
  lda: number,
  b: Float32Array,
  bOffset: number,
  ldb: number,
  beta: number,
  c: Float32Array,
  cOffset: number,
  ldc: number,
) => void;

/**
 * gemmBatched(transA, transB, m, n, k, alpha, A, aOffsets, lda, B, bOffsets, ldb, beta, C, cOffset, cStride, ldc):
 * item i multiplies op(A) at aOffsets[i] by op(B) at bOffsets[i] into C at cOffset + i*cStride. Items
 * may share A or B (broadcasting); C regions may not overlap. Small items run in parallel, one per thread.
 */
export type NativeGemmBatched = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  aOffsets: Float64Array,
  lda: number,
  b: Float32Array,
  bOffsets: Float64Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  cOffset: number,
  cStride: number,
  ldc: number,
) => void;

type Dense = [n: number, alpha: number, b: Float32Array, bOffset: number, ldb: number, beta: number, c: Float32Array, cOffset: number, ldc: number];

/** spmmCSR(rows, cols, indptr, indices, values, ...dense). */
export type NativeSpmmCSR = (rows: number, cols: number, indptr: Int32Array, indices: Int32Array, values: Float32Array, ...dense: Dense) => void;
/** spmmNM(rows, cols, n, m, indexBits, values, indices, ...dense). */
export type NativeSpmmNM = (rows: number, cols: number, n: number, m: number, indexBits: number, values: Float32Array, indices: Uint8Array, ...dense: Dense) => void;
/** spmmBlock(rows, cols, blockRows, blockCols, indptr, indices, values, ...dense). */
export type NativeSpmmBlock = (
  rows: number,
  cols: number,
  blockRows: number,
  blockCols: number,
  indptr: Int32Array,
  indices: Int32Array,
  values: Float32Array,
  ...dense: Dense
) => void;

/**
 * linearCSR(rows, cols, indptr, indices, values, tokens, alpha, X, xOffset, ldx, beta, Y, yOffset, ldy):
 * Y[tokens, rows] = alpha * X[tokens, cols] * A^T + beta * Y. linearCSRGradInput takes the same
 * arguments with (dY [tokens, rows], dX [tokens, cols]) in place of (X, Y): dX = alpha * dY * A + beta * dX.
 */
export type NativeLinearCSR = (
  rows: number,
  cols: number,
  indptr: Int32Array,
  indices: Int32Array,
  values: Float32Array,
  tokens: number,
  alpha: number,
  input: Float32Array,
  inputOffset: number,
  ldInput: number,
  beta: number,
  output: Float32Array,
  outputOffset: number,
  ldOutput: number,
) => void;

/**
 * sddmmCSR(rows, cols, indptr, indices, tokens, alpha, dY, dyOffset, lddy, X, xOffset, ldx, beta, out, outOffset):
 * out[outOffset + p] = alpha * sum_t dY[t, row of p] * X[t, indices[p]] + beta * out[outOffset + p].
 */
export type NativeSddmmCSR = (
  rows: number,
  cols: number,
  indptr: Int32Array,
  indices: Int32Array,
  tokens: number,
  alpha: number,
  dy: Float32Array,
  dyOffset: number,
  lddy: number,
  x: Float32Array,
  xOffset: number,
  ldx: number,
  beta: number,
  out: Float32Array,
  outOffset: number,
) => void;

/** gemvSparseInput(transW, rows, cols, n, alpha, W, wOffset, ldw, X, xOffset, ldx, beta, Y, yOffset, ldy). */
export type NativeGemvSparseInput = (
  transW: boolean,
  rows: number,
  cols: number,
  n: number,
  alpha: number,
  w: Float32Array,
  wOffset: number,
  ldw: number,
  x: Float32Array,
  xOffset: number,
  ldx: number,
  beta: number,
  y: Float32Array,
  yOffset: number,
  ldy: number,
) => void;

/** attention(heads, seq, headDim, Q, qOffset, K, kOffset, V, vOffset, Out, outOffset, causal, scale, blockSize, mask | null); null mask = dense. */
export type NativeAttention = (
  heads: number,
  seq: number,
  headDim: number,
  q: Float32Array,
  qOffset: number,
  k: Float32Array,
  kOffset: number,
  v: Float32Array,
  vOffset: number,
  out: Float32Array,
  outOffset: number,
  causal: boolean,
  scale: number,
  blockSize: number,
  mask: Uint8Array | null,
  /** Builds that have attentionBackward also take these: mask value 2 = partial tile read through elementMask; lse written when given. */
  elementMask?: Uint8Array | null,
  lse?: Float32Array | null,
  lseOffset?: number,
) => void;

/**
 * attentionBackward(heads, seq, headDim, Q, qOffset, K, kOffset, V, vOffset, Out, outOffset, dOut, dOutOffset,
 * lse, lseOffset, causal, scale, blockSize, mask | null, elementMask | null, dQ, dqOffset, dK, dkOffset, dV, dvOffset).
 */
export type NativeAttentionBackward = (
  heads: number,
  seq: number,
  headDim: number,
  q: Float32Array,
  qOffset: number,
  k: Float32Array,
  kOffset: number,
  v: Float32Array,
  vOffset: number,
  out: Float32Array,
  outOffset: number,
  dOut: Float32Array,
  dOutOffset: number,
  lse: Float32Array,
  lseOffset: number,
  causal: boolean,
  scale: number,
  blockSize: number,
  mask: Uint8Array | null,
  elementMask: Uint8Array | null,
  dq: Float32Array,
  dqOffset: number,
  dk: Float32Array,
  dkOffset: number,
  dv: Float32Array,
  dvOffset: number,
) => void;

/** attentionBitmapKV(heads, kvHeads, headDim, positions, Q, qOffset, kBits, kValues, kStart, vBits, vValues, vStart, Out, outOffset, scale). */
export type NativeAttentionBitmapKV = (
  heads: number,
  kvHeads: number,
  headDim: number,
  positions: number,
  q: Float32Array,
  qOffset: number,
  kBits: Uint8Array,
  kValues: Float32Array,
  kStart: Int32Array,
  vBits: Uint8Array,
  vValues: Float32Array,
  vStart: Int32Array,
  out: Float32Array,
  outOffset: number,
  scale: number,
) => void;

/** maskedAdam(params, grads, indices | null, bits | null, m, v, step, lr, beta1, beta2, eps, weightDecay). */
export type NativeMaskedAdam = (
  params: Float32Array,
  grads: Float32Array,
  indices: Int32Array | null,
  bits: Uint8Array | null,
  m: Float32Array,
  v: Float32Array,
  step: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
) => void;

/** maskedSGD(params, grads, indices | null, bits | null, velocity | null, lr, momentum, weightDecay, nesterov). */
export type NativeMaskedSGD = (
  params: Float32Array,
  grads: Float32Array,
  indices: Int32Array | null,
  bits: Uint8Array | null,
  velocity: Float32Array | null,
  lr: number,
  momentum: number,
  weightDecay: number,
  nesterov: boolean,
) => void;

/**
 * elementwiseBinary(op, a, b, out, rank, plan): out[0:prod(dims)] = a op b (op 0 add, 1 sub, 2 mul,
 * 3 div) over `rank` merged axes; plan holds dims, then a's element steps, then b's, `rank` entries
 * each, innermost axis first (a step is 0 where the operand repeats; innermost steps are 0 or 1).
 */
export type NativeElementwiseBinary = (op: number, a: Float32Array, b: Float32Array, out: Float32Array, rank: number, plan: Float64Array) => void;
/** elementwiseUnary(op, x, out): out[i] = op(x[i]); op 0 neg, 1 abs, 2 square, 3 sqrt, 4 rsqrt, 5 reciprocal, 6 relu. */
export type NativeElementwiseUnary = (op: number, x: Float32Array, out: Float32Array) => void;
/** reduceLastAxis(op, x, rows, cols, out): out[r] = sum (op 0) or max (op 1) of x[r*cols : (r+1)*cols]. */
export type NativeReduceLastAxis = (op: number, x: Float32Array, rows: number, cols: number, out: Float32Array) => void;

/**
 * gather32(x, start, out, rank, plan): out[0:prod(dims)] = the strided view of x's 4-byte elements
 * from element `start`; plan holds dims, then steps (elements), `rank` entries each, innermost axis
 * first. Bits are copied unchanged, so an Int32Array's storage may be passed as a Float32Array view.
 */
export type NativeGather32 = (x: Float32Array, start: number, out: Float32Array, rank: number, plan: Float64Array) => void;

/** The binding's raw functions. They check bounds themselves but throw plain errors; use the kernels. */
export interface NativeAddon {
  info(): NativeInfo;
  /** Best dense gemm: OpenBLAS when linked (except gemv-like shapes, m or n <= 16), else the addon's own blocked kernel. */
  gemm: NativeGemm;
  /** The addon's own blocked, packed gemm, even when OpenBLAS is linked. */
  gemmBlocked: NativeGemm;
  /** OpenBLAS's cblas_sgemm (one single-threaded call per pool thread); present only when info().blas is 'openblas'. */
  gemmOpenBLAS?: NativeGemm;
  /** Many same-shaped products in one call (the tfjs backend's batched matmul); present when info().kernels lists it. */
  gemmBatched?: NativeGemmBatched;
  /** The sparse products; present when info().kernels lists them. */
  spmmCSR?: NativeSpmmCSR;
  spmmNM?: NativeSpmmNM;
  spmmBlock?: NativeSpmmBlock;
  gemvSparseInput?: NativeGemvSparseInput;
  /** A sparse linear layer's forward, input gradient and weight gradient (token-major activations); present when info().kernels lists them. */
  linearCSR?: NativeLinearCSR;
  linearCSRGradInput?: NativeLinearCSR;
  sddmmCSR?: NativeSddmmCSR;
  /** Dense (mask null) and block-sparse attention. */
  attention?: NativeAttention;
  /** Block-sparse attention gradients; present when info().kernels lists it. */
  attentionBackward?: NativeAttentionBackward;
  /** Decode-time attention over a bitmap KV cache; present when info().kernels lists it. */
  attentionBitmapKV?: NativeAttentionBitmapKV;
  maskedAdam?: NativeMaskedAdam;
  maskedSGD?: NativeMaskedSGD;
  /** Float32 elementwise kernels of the sparse-cpu tfjs backend; present when info().kernels lists them. */
  elementwiseBinary?: NativeElementwiseBinary;
  elementwiseUnary?: NativeElementwiseUnary;
  reduceLastAxis?: NativeReduceLastAxis;
  gather32?: NativeGather32;
  /** Float64 blocked Cholesky and lower-triangular inverse (the pruners' Hessian factor); present when info().kernels lists them. */
  choleskyF64?: NativeCholeskyF64;
  triangularInverseF64?: NativeTriangularInverseF64;
  /** Wanda's column statistics and per-row selection (the pruners); present when info().kernels lists them. */
  columnMomentsF32?: NativeColumnMomentsF32;
  rowTopKScaledAbs?: NativeRowTopKScaledAbs;
  /** The fused ops' activation forward (op 0 GELU's tanh form, 1 SwiGLU silu(x) * b, 2 SiLU), over x's length into y (apart from x); present when info().kernels lists it. */
  fusedActForward?: NativeFusedActForward;
}

/** fusedActForward(op, x, b | null, y): y = gelu(x) (op 0, b null), silu(x) * b (op 1) or silu(x) (op 2, b null), over x's length; y must not overlap x or b. */
export type NativeFusedActForward = (op: number, x: Float32Array, b: Float32Array | null, y: Float32Array) => void;

/** columnMomentsF32(rows, cols, X, xOffset, ldx, sumSquares, mean, m2): -1, or the lowest flat index of a non-finite entry. */
export type NativeColumnMomentsF32 = (rows: number, cols: number, x: Float32Array, xOffset: number, ldx: number, sumSquares: Float64Array, mean: Float64Array, m2: Float64Array) => number;
/** rowTopKScaledAbs(rows, cols, W, wOffset, ldw, scale, k, mask, out | null, outOffset, ldo): -1, or the lowest flat index of a non-finite weight. */
export type NativeRowTopKScaledAbs = (
  rows: number,
  cols: number,
  w: Float32Array,
  wOffset: number,
  ldw: number,
  scale: Float64Array,
  k: number,
  mask: Uint32Array,
  out: Float32Array | null,
  outOffset: number,
  ldo: number,
) => number;

/** choleskyF64(n, A, aOffset, lda): in place; null, or the first pivot that is not positive. */
export type NativeCholeskyF64 = (n: number, a: Float64Array, aOffset: number, lda: number) => { index: number; pivot: number } | null;
/** triangularInverseF64(n, L, lOffset, ldl, X, xOffset, ldx): -1, or the first zero or non-finite diagonal entry. */
export type NativeTriangularInverseF64 = (n: number, l: Float64Array, lOffset: number, ldl: number, x: Float64Array, xOffset: number, ldx: number) => number;

export type NativeLoadResult =
  | { available: true; addon: NativeAddon; info: NativeInfo; path: string }
  | { available: false; reason: string; tried: string[] };

const PACKAGE = '@sparse/kernels-cpu';

function packageRoot(): string {
  // src/native.ts and dist/index.{js,cjs} both sit one level below the package root.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
}

/** Where the build script puts the addon, plus SPARSE_KERNELS_CPU_ADDON when set. */
export function defaultAddonPaths(): string[] {
  const root = packageRoot();
  const paths = [path.join(root, 'build', 'Release', 'sparse_cpu.node'), path.join(root, 'build', 'Debug', 'sparse_cpu.node')];
  const override = process.env.SPARSE_KERNELS_CPU_ADDON;
  return override ? [path.resolve(override), ...paths] : paths;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
}

function checkAddon(value: unknown): NativeAddon {
  const addon = value as Record<string, unknown> | null;
  for (const fn of ['info', 'gemm', 'gemmBlocked']) {
    if (typeof addon?.[fn] !== 'function') throw new Error(`it exports no ${fn}() (stale build?)`);
  }
  const info = (addon as unknown as NativeAddon).info();
  if (info.blas === 'openblas' && typeof addon?.gemmOpenBLAS !== 'function') throw new Error('it links OpenBLAS but exports no gemmOpenBLAS() (stale build?)');
  for (const fn of info.kernels) {
    if (typeof addon?.[fn] !== 'function') throw new Error(`it lists ${fn} but exports no ${fn}() (stale build?)`);
  }
  return addon as unknown as NativeAddon;
}

/**
 * Tries each candidate path in order and returns the first addon that loads, or every reason the
 * candidates failed. Pure: no caching and no logging.
 */
export function loadNativeAddon(candidates: readonly string[] = defaultAddonPaths()): NativeLoadResult {
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const candidate of candidates) {
    if (!existsSync(candidate)) {
      failures.push(`${candidate} does not exist`);
      continue;
    }
    try {
      const addon = checkAddon(require(candidate));
      return { available: true, addon, info: addon.info(), path: candidate };
    } catch (err) {
      failures.push(`${candidate} failed to load: ${firstLine(err)}`);
    }
  }
  const root = packageRoot();
  const log = path.join(root, 'build', 'native-build.log');
  const build = `build it with: node ${path.join(root, 'scripts', 'build-native.mjs')} --force`;
  const hint = existsSync(log) ? `${build} (last build's output: ${log})` : build;
  const reason = failures.length === 0 ? `no candidate paths; ${hint}` : `${failures.join('; ')}; ${hint}`;
  return { available: false, reason, tried: [...candidates] };
}

// Shared through globalThis so that two copies of this package load (and warn) once.
const STATE_KEY = Symbol.for('@sparse/kernels-cpu.native');

interface NativeState {
  result?: NativeLoadResult;
  warned: boolean;
}

function state(): NativeState {
  const g = globalThis as unknown as Record<symbol, NativeState | undefined>;
  return (g[STATE_KEY] ??= { warned: false });
}

/** The addon at its default location, loaded on first use and cached. */
export function nativeStatus(): NativeLoadResult {
  const s = state();
  return (s.result ??= loadNativeAddon());
}

/** Whether the native addon loaded. */
export function isNativeAvailable(): boolean {
  return nativeStatus().available;
}

/** The addon's self-description, or undefined when it is not available. */
export function nativeInfo(): NativeInfo | undefined {
  const status = nativeStatus();
  return status.available ? status.info : undefined;
}

/** The line logged (once per process) when the addon is missing. */
export function fallbackMessage(reason: string): string {
  return `${PACKAGE}: native addon not built (${reason}); using the TypeScript reference kernels`;
}

/** Logs the fallback line the first time it is called in a process while the addon is missing. */
export function warnIfNativeMissing(log: (line: string) => void = console.warn): void {
  const status = nativeStatus();
  const s = state();
  if (status.available || s.warned) return;
  s.warned = true;
  log(fallbackMessage(status.reason));
}
