import type { BSRLayout, CSRLayout, NMLayout } from '../layouts/types.js';

/**
 * Argument objects of the BLAS-like kernels. Every matrix is row-major (C order) inside a flat
 * Float32Array: element (i, j) of a matrix X with leading dimension ldx and offset xOffset lives at
 * x[xOffset + i*ldx + j]. These are exactly the arguments a native kernel takes (cblas_sgemm with
 * CblasRowMajor), so a call crosses into native code without copying.
 *
 * Scalar semantics follow BLAS: with beta === 0, C is overwritten without being read (NaN or Inf
 * already in C does not propagate); with alpha === 0, A and B are not read. C must not overlap A or B.
 */

/** C[m,n] = alpha * op(A) * op(B) + beta * C, op(X) = transX ? X^T : X. */
export interface GemmArgs {
  /** A is stored [k, m] (lda >= max(1, m)) when true, [m, k] (lda >= max(1, k)) when false. */
  transA: boolean;
  /** B is stored [n, k] (ldb >= max(1, k)) when true, [k, n] (ldb >= max(1, n)) when false. */
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  a: Float32Array;
  aOffset: number;
  lda: number;
  b: Float32Array;
  bOffset: number;
  ldb: number;
  beta: number;
  /** Output [m, n], ldc >= max(1, n). Written in place. */
  c: Float32Array;
  cOffset: number;
  ldc: number;
}

/** The dense operands of a sparse-times-dense product: B[K,N] (K = a.shape[1]) and C[M,N] (M = a.shape[0]). */
export interface SpmmDenseArgs {
  b: Float32Array;
  bOffset: number;
  /** ldb >= max(1, n). */
  ldb: number;
  /** Columns of B and C. */
  n: number;
  alpha: number;
  beta: number;
  c: Float32Array;
  cOffset: number;
  /** ldc >= max(1, n). */
  ldc: number;
}

/** C[M,N] = alpha * A * B + beta * C with A in CSR form. */
export interface SpmmCSRArgs extends SpmmDenseArgs {
  a: CSRLayout<'float32'>;
}

/** C[M,N] = alpha * A * B + beta * C with A in N:M compressed form. */
export interface SpmmNMArgs extends SpmmDenseArgs {
  a: NMLayout<'float32'>;
}

/** C[M,N] = alpha * A * B + beta * C with A in block-sparse rows (edge blocks zero-padded). */
export interface SpmmBlockArgs extends SpmmDenseArgs {
  a: BSRLayout<'float32'>;
}

/**
 * The sparsity pattern of a CSR matrix: its shape and structure without values. A CSRLayout is one,
 * so a weight's layout can be passed where only its pattern is read.
 */
export interface CSRPattern {
  shape: [number, number];
  indptr: Int32Array;
  indices: Int32Array;
}

/**
 * Forward product of a linear layer with a sparse weight, activations token-major (one row per
 * token, as tfjs holds them): Y[T, out] = alpha * X[T, in] * W^T + beta * Y, W in CSR [out, in]
 * (out = w.shape[0], in = w.shape[1]). So Y[t, i] = alpha * sum over stored (i, j) of W(i, j) X[t, j]
 * + beta * Y[t, i]. Y must not overlap X or w.values.
 */
export interface LinearCSRArgs {
  w: CSRLayout<'float32'>;
  /** T, the rows of X and Y. */
  tokens: number;
  alpha: number;
  /** X [T, in], ldx >= max(1, in). */
  x: Float32Array;
  xOffset: number;
  ldx: number;
  beta: number;
  /** Y [T, out], ldy >= max(1, out); written in place. */
  y: Float32Array;
  yOffset: number;
  ldy: number;
}

/**
 * Input gradient of that layer: dX[T, in] = alpha * dY[T, out] * W + beta * dX, W in CSR [out, in].
 * So every stored (i, j) adds alpha * W(i, j) * dY[:, i] to dX[:, j]. dX must not overlap dY or w.values.
 */
export interface LinearCSRGradInputArgs {
  w: CSRLayout<'float32'>;
  /** T, the rows of dY and dX. */
  tokens: number;
  alpha: number;
  /** dY [T, out], lddy >= max(1, out). */
  dy: Float32Array;
  dyOffset: number;
  lddy: number;
  beta: number;
  /** dX [T, in], lddx >= max(1, in); written in place. */
  dx: Float32Array;
  dxOffset: number;
  lddx: number;
}

/**
 * Sampled dense-dense product (SDDMM), the weight gradient of that layer at its stored entries only:
 * for every stored entry p of the pattern (row i = its row, j = indices[p], p < nnz = indptr[out]),
 * out[outOffset + p] = alpha * sum_t dY[t, i] * X[t, j] + beta * out[outOffset + p]; that is
 * alpha * (dY^T X)(i, j), the dense weight gradient read at the pattern's positions. Entries are
 * written in the pattern's storage order, so with the weight's own layout as the pattern the
 * result lines up with w.values (ready for maskedAdam over the packed values). out must not
 * overlap dY or X.
 */
export interface SddmmCSRArgs {
  /** [out, in]; a CSRLayout (e.g. the weight's) can be passed, its values are not read. */
  pattern: CSRPattern;
  /** T, the rows of dY and X (the sum runs over them). */
  tokens: number;
  alpha: number;
  /** dY [T, out], lddy >= max(1, out). */
  dy: Float32Array;
  dyOffset: number;
  lddy: number;
  /** X [T, in], ldx >= max(1, in). */
  x: Float32Array;
  xOffset: number;
  ldx: number;
  beta: number;
  /** One value per stored entry, at out[outOffset + p]; written in place. */
  out: Float32Array;
  outOffset: number;
}

export type GemmKernel = (args: GemmArgs) => void;
export type SpmmCSRKernel = (args: SpmmCSRArgs) => void;
export type SpmmNMKernel = (args: SpmmNMArgs) => void;
export type SpmmBlockKernel = (args: SpmmBlockArgs) => void;
export type LinearCSRKernel = (args: LinearCSRArgs) => void;
export type LinearCSRGradInputKernel = (args: LinearCSRGradInputArgs) => void;
export type SddmmCSRKernel = (args: SddmmCSRArgs) => void;

/**
 * Y[rows, n] = alpha * op(W) * X[cols, n] + beta * Y, skipping input channels that are zero: channel
 * p (row p of X) is skipped when X[p, 0:n] are all zero (+0 or -0), and column p of op(W) is then
 * never read. So it is gemm (A = W, transA = transW) except that weights of skipped channels never
 * reach Y, NaN or Inf among them included. A vector is n = 1 (ldx, ldy >= 1).
 */
export interface GemvSparseInputArgs {
  /** W is stored [cols, rows] ([in, out], ldw >= max(1, rows)) when true, [rows, cols] ([out, in], ldw >= max(1, cols)) when false. */
  transW: boolean;
  /** Output channels (rows of Y). */
  rows: number;
  /** Input channels (rows of X). */
  cols: number;
  /** Columns of X and Y (tokens; 1 for a vector). */
  n: number;
  alpha: number;
  w: Float32Array;
  wOffset: number;
  ldw: number;
  /** X [cols, n], ldx >= max(1, n). */
  x: Float32Array;
  xOffset: number;
  ldx: number;
  beta: number;
  /** Y [rows, n], ldy >= max(1, n); written in place, must not overlap W or X. */
  y: Float32Array;
  yOffset: number;
  ldy: number;
}

/**
 * Self-attention of `heads` heads over `seq` positions: Q, K, V and the output are [heads, seq,
 * headDim] row-major at their offsets. Query i attends to the keys j allowed for it (all of them,
 * or j <= i when causal) with weights softmax_j(scale * q_i . k_j), and out_i = sum_j weight_j v_j.
 * A query with no allowed key gets a zero output.
 */
export interface AttentionArgs {
  heads: number;
  seq: number;
  headDim: number;
  q: Float32Array;
  qOffset: number;
  k: Float32Array;
  kOffset: number;
  v: Float32Array;
  vOffset: number;
  /** Written in place; must not overlap q, k or v. */
  out: Float32Array;
  outOffset: number;
  /** Keys after the query are masked out. */
  causal: boolean;
  /** Score scale (default 1 / sqrt(headDim)). */
  scale?: number;
}

/**
 * Attention restricted to tiles: with nb = ceil(seq / blockSize), blockMask[bi * nb + bj] (or
 * blockMask[h * nb * nb + bi * nb + bj] for a per-head mask) says what the queries of block bi do
 * with the keys of block bj (always subject to `causal`): 0 = skip the tile (never computed),
 * 2 = partial (compute the tile, but only the elements `elementMask` allows), any other value
 * (1) = compute the whole tile.
 */
export interface BlockSparseAttentionArgs extends AttentionArgs {
  blockSize: number;
  /** [nb, nb] shared by every head, or [heads, nb, nb]; row-major; 0 skip, 1 full tile, 2 partial tile. */
  blockMask: Uint8Array;
  /**
   * Element mask consulted inside partial tiles (blockMask value 2) only; required when any tile is 2.
   * Bits LSB-first, [seq, seq] shared by every head (ceil(seq * seq / 8) bytes) or [heads, seq, seq]
   * (ceil(heads * seq * seq / 8) bytes): the bit of (h, i, j) is bit n & 7 of byte n >> 3 with
   * n = i * seq + j (shared) or (h * seq + i) * seq + j (per head); 1 = query i may attend to key j.
   */
  elementMask?: Uint8Array;
  /**
   * [heads, seq] at lseOffset, written when given: each query row's log-sum-exp of its scaled allowed
   * scores, log(sum_j exp(scale * q_i . k_j)) (-Infinity for a row with no allowed key). The input
   * of blockSparseAttentionBackward.
   */
  lse?: Float32Array;
  /** Default 0. */
  lseOffset?: number;
  /** When given, `tiles` is incremented by the number of (head, tile) pairs computed. */
  stats?: { tiles: number };
}

/**
 * Backward of block-sparse attention (flash-attention style, over the kept tiles only), given the
 * forward's out and lse. With P_ij = exp(scale q_i . k_j - lse_i) for the allowed (i, j) (the same
 * tiles, element mask and causal rule as the forward) and D_i = dOut_i . out_i:
 * dV_j = sum_i P_ij dOut_i; dS_ij = P_ij (dOut_i . v_j - D_i); dQ_i = scale sum_j dS_ij k_j;
 * dK_j = scale sum_i dS_ij q_i. Every tensor is [heads, seq, headDim] (lse [heads, seq]) at its
 * offset; dq, dk, dv are written (not accumulated) and must not overlap the inputs or each other.
 */
export interface BlockSparseAttentionBackwardArgs {
  heads: number;
  seq: number;
  headDim: number;
  q: Float32Array;
  qOffset: number;
  k: Float32Array;
  kOffset: number;
  v: Float32Array;
  vOffset: number;
  /** The forward's output. */
  out: Float32Array;
  outOffset: number;
  /** Gradient of the loss with respect to out. */
  dOut: Float32Array;
  dOutOffset: number;
  /** The forward's lse, [heads, seq]. */
  lse: Float32Array;
  lseOffset: number;
  causal: boolean;
  /** Score scale (default 1 / sqrt(headDim)); must be the forward's. */
  scale?: number;
  blockSize: number;
  /** As BlockSparseAttentionArgs.blockMask. */
  blockMask: Uint8Array;
  /** As BlockSparseAttentionArgs.elementMask. */
  elementMask?: Uint8Array;
  dq: Float32Array;
  dqOffset: number;
  dk: Float32Array;
  dkOffset: number;
  dv: Float32Array;
  dvOffset: number;
  /** When given, `tiles` is incremented by the number of (head, tile) pairs computed. */
  stats?: { tiles: number };
}

/**
 * Decode-time attention (one query per head) over a KV cache stored as bitmaps: the cache row of
 * (position p, kv head g) keeps the entries whose bit is set in kBits (vBits), the kept values laid
 * out in (position, kvHead, dim) order from kValues[kStart[p * kvHeads + g]] (vValues, vStart).
 * Query head h reads kv head g = floor(h / (heads / kvHeads)) (grouped-query attention). With k^_p
 * and v^_p the cache rows with pruned entries zero: out_h = sum_p softmax_p(scale q_h . k^_p) v^_p.
 * Zero positions give a zero output.
 */
export interface AttentionBitmapKVArgs {
  /** Query heads. */
  heads: number;
  /** Key/value heads; divides heads. */
  kvHeads: number;
  headDim: number;
  positions: number;
  /** [heads, headDim]. */
  q: Float32Array;
  qOffset: number;
  /** [positions, kvHeads, ceil(headDim / 8)] bytes, LSB-first, 1 = entry kept; padding bits zero. */
  kBits: Uint8Array;
  vBits: Uint8Array;
  /** The kept values, row after row. */
  kValues: Float32Array;
  vValues: Float32Array;
  /** [positions * kvHeads + 1], non-decreasing: row r's kept values are [start[r], start[r + 1]). */
  kStart: Int32Array;
  vStart: Int32Array;
  /** [heads, headDim], written; must not overlap q or the values. */
  out: Float32Array;
  outOffset: number;
  /** Score scale (default 1 / sqrt(headDim)). */
  scale?: number;
}

/**
 * Entries an optimizer step updates: a strictly increasing list of flat indices, or a packed bit
 * mask (LSB-first, bit i of byte i >> 3; a Uint32Array, as @sparse/masks stores masks, is read
 * through its bytes on little-endian machines). Optimizer state holds one value per active entry,
 * in increasing index order.
 */
export type ActiveEntries = { indices: Int32Array } | { bits: Uint8Array | Uint32Array };

/**
 * Adam (AdamW when weightDecay > 0: decoupled decay) on the active entries of params only; the
 * others, and their gradients, are not touched. For the k-th active entry i, with g = grads[i]:
 * m[k] = beta1 m[k] + (1 - beta1) g; v[k] = beta2 v[k] + (1 - beta2) g^2;
 * params[i] -= lr * ((m[k] / (1 - beta1^step)) / (sqrt(v[k] / (1 - beta2^step)) + eps) + weightDecay * params[i]).
 */
export interface MaskedAdamArgs {
  params: Float32Array;
  /** Dense gradients, same length as params. */
  grads: Float32Array;
  active: ActiveEntries;
  /** First and second moments, one per active entry. */
  m: Float32Array;
  v: Float32Array;
  /** 1-based step number (after incrementing) for the bias corrections. */
  step: number;
  lr: number;
  /** Defaults 0.9, 0.999, 1e-8, 0. */
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/**
 * SGD with optional momentum (PyTorch's rule, no dampening) on the active entries of params only.
 * For the k-th active entry i: g = grads[i] + weightDecay * params[i]; with momentum,
 * velocity[k] = momentum * velocity[k] + g and g = nesterov ? g + momentum * velocity[k] : velocity[k];
 * then params[i] -= lr * g.
 */
export interface MaskedSGDArgs {
  params: Float32Array;
  grads: Float32Array;
  active: ActiveEntries;
  lr: number;
  /** Default 0 (plain SGD; velocity unused). */
  momentum?: number;
  /** One per active entry; required when momentum is not 0. */
  velocity?: Float32Array;
  weightDecay?: number;
  nesterov?: boolean;
}

/** In-place lower Cholesky factor of the symmetric positive definite [n, n] matrix at (aOffset, lda). */
export interface CholeskyF64Args {
  n: number;
  /** Only the lower triangle is read; on return it holds L (a = L L^T) and the upper triangle is zero. */
  a: Float64Array;
  aOffset: number;
  lda: number;
}

/** The first pivot that is not positive (the matrix is not positive definite to working precision). */
export interface CholeskyFailure {
  index: number;
  pivot: number;
}

/** x = l^{-1} for the lower-triangular [n, n] l (its upper triangle is not read). */
export interface TriangularInverseF64Args {
  n: number;
  l: Float64Array;
  lOffset: number;
  ldl: number;
  /** [n, n] at (xOffset, ldx): l itself (same array, offset and ldx = ldl: in place) or disjoint from it; its upper triangle is set to zero. */
  x: Float64Array;
  xOffset: number;
  ldx: number;
}

export type GemvSparseInputKernel = (args: GemvSparseInputArgs) => void;
/** Returns null, or the first failing pivot (a is then partly factored). */
export type CholeskyF64Kernel = (args: CholeskyF64Args) => CholeskyFailure | null;
/** Returns -1, or the index of the first diagonal entry of l that is zero or not finite (x then undefined). */
export type TriangularInverseF64Kernel = (args: TriangularInverseF64Args) => number;
export type AttentionKernel = (args: AttentionArgs) => void;
export type BlockSparseAttentionKernel = (args: BlockSparseAttentionArgs) => void;
export type BlockSparseAttentionBackwardKernel = (args: BlockSparseAttentionBackwardArgs) => void;
export type AttentionBitmapKVKernel = (args: AttentionBitmapKVArgs) => void;
export type MaskedAdamKernel = (args: MaskedAdamArgs) => void;
export type MaskedSGDKernel = (args: MaskedSGDArgs) => void;

/**
 * Per-column moments of one batch X [rows, cols] (float32, row-major at (xOffset, ldx)), accumulated in
 * float64 with the rows in increasing order: sumSquares[j] += Σ_i x_ij², mean[j] = (Σ_i x_ij) / rows and
 * m2[j] = Σ_i (x_ij - mean[j])². Nothing is written when rows is 0 or when an entry of X is not finite.
 */
export interface ColumnMomentsF32Args {
  rows: number;
  cols: number;
  x: Float32Array;
  xOffset: number;
  ldx: number;
  /** [cols], added into. */
  sumSquares: Float64Array;
  /** [cols], overwritten with the batch mean. */
  mean: Float64Array;
  /** [cols], overwritten with the batch's sum of squared deviations from its mean. */
  m2: Float64Array;
}

/**
 * Per-row top-k of scaled magnitudes (Wanda's selection): in every row i of the float32 [rows, cols] matrix
 * w, the k entries with the largest score |w_ij| * scale_j (computed in float64) are kept, ties going to
 * the lower column. The mask bit i * cols + j (32 to a word, lowest bit first) is set for a kept entry and
 * cleared otherwise, as are the bits past rows * cols in the last word; `out`, when given, receives w_ij
 * for kept entries and 0 for the others (it may be w itself, same offset and leading dimension).
 */
export interface RowTopKScaledAbsArgs {
  rows: number;
  cols: number;
  w: Float32Array;
  wOffset: number;
  ldw: number;
  /** [cols]: finite and non-negative. */
  scale: Float64Array;
  /** Entries kept in every row, 0..cols. */
  k: number;
  /** ceil(rows * cols / 32) words. */
  mask: Uint32Array;
  out?: Float32Array;
  outOffset?: number;
  ldo?: number;
}

/** The nonlinearities of activationF32. */
export type ActivationF32Kind = 'gelu-tanh' | 'silu' | 'relu' | 'relu2';

/**
 * An elementwise nonlinearity over n float32 values: y[yOffset + i] = f(x[xOffset + i]). 'gelu-tanh' is GELU's
 * tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³))), computed as x · sigmoid(x (A + B x²)) with
 * A = 2 sqrt(2/pi), B = 0.044715 A; 'silu' x · sigmoid(x); 'relu' max(x, 0); 'relu2' max(x, 0)². y may be x
 * itself at the same offset (in place); otherwise the two ranges must not overlap.
 */
export interface ActivationF32Args {
  kind: ActivationF32Kind;
  n: number;
  x: Float32Array;
  xOffset: number;
  y: Float32Array;
  yOffset: number;
}

export type ActivationF32Kernel = (args: ActivationF32Args) => void;

/** Returns -1, or the lowest flat index t * cols + j of an entry of X that is not finite (nothing written then). */
export type ColumnMomentsF32Kernel = (args: ColumnMomentsF32Args) => number;
/** Returns -1, or the lowest flat index i * cols + j of a weight that is not finite (mask and out are then unspecified). */
export type RowTopKScaledAbsKernel = (args: RowTopKScaledAbsArgs) => number;
