// 2:4 sparse GEMM on the sparse tensor cores (inline PTX mma.sp m16n8k32, fp16/bf16 in, fp32
// accumulate), the GPU compressor into the layout it reads, and the same kernel on dense A
// (mma.sync m16n8k16) as a like-for-like baseline.
//
// Fragment layouts used below (PTX ISA, warp-level mma / mma.sp; g = lane / 4, t = lane % 4):
// - A of mma.sp.m16n8k32 (.f16/.bf16) is the compressed 16 x 16 tile (16 kept values per row, two
//   per chunk of four logical columns). Each lane holds 4 registers of two values: reg0 = row g,
//   compressed columns 2t, 2t+1; reg1 = row g+8, same columns; reg2 = row g, columns 2t+8, 2t+9;
//   reg3 = row g+8, columns 2t+8, 2t+9 -- the layout of the dense m16n8k16 A fragment, so one
//   ldmatrix.x4 from a row-major shared tile fills it (lane l points at row l % 16, column
//   (l / 16) * 8; matrix j is rows (j % 2) * 8.., columns (j / 2) * 8..).
// - B of mma.sp.m16n8k32 is 32 x 8 ("col"): reg j holds rows (k) 8j + 2t and 8j + 2t + 1 of column
//   (n) g. ldmatrix.x4.trans over a row-major [k][n] shared tile gives exactly that when lane l points
//   at row k = l (matrix j = rows 8j..8j+7). The dense m16n8k16 B fragment is regs 0-1 (k 0..15) or
//   2-3 (k 16..31) of the same load.
// - C/D (f32): c0, c1 = row g, columns 2t, 2t+1; c2, c3 = row g+8, same columns.
// - Metadata: one 32-bit register per lane; with sparsity selector 0 the lanes 4g and 4g+1 supply
//   it. Lane 4g+t (t < 2): bits 15..0 = nibbles of chunks 4t..4t+3 of row g, bits 31..16 = the same
//   chunks of row g+8; nibble = first position | second position << 2. The compressor stores the 16
//   words of each (16-row, 32-column) tile contiguously as word g*2+t, so a lane reads its word with
//   one load: Ms[...][g*2 + (t & 1)] (lanes with t >= 2 load a word too; selector 0 ignores it).
#include <algorithm>
#include <climits>
#include "common.cuh"
#include "kernels.h"

namespace sparse_cuda {
namespace {

constexpr int BM = 128;
constexpr int BN = 128;
constexpr int BK = 64;  // logical k per pipeline stage: two mma k-steps of 32
constexpr int STAGES = 3;
constexpr int THREADS = 256;
constexpr int PAD = 8;  // halves of padding per shared row: keeps ldmatrix rows on distinct banks
constexpr int GROUP_M = 8;

template <bool SPARSE>
struct Smem {
  static constexpr int A_COLS = SPARSE ? BK / 2 : BK;  // halves per A row in a stage
  static constexpr int A_LD = A_COLS + PAD;
  static constexpr int B_LD = BN + PAD;
  static constexpr int A_HALVES = BM * A_LD;
  static constexpr int B_HALVES = BK * B_LD;
  static constexpr int META_WORDS = SPARSE ? (BM / 16) * (BK / 32) * 16 : 0;
  static constexpr int STAGE_BYTES = (A_HALVES + B_HALVES) * 2 + META_WORDS * 4;
  static constexpr int BYTES = STAGE_BYTES * STAGES;
};

template <bool BF16>
__device__ __forceinline__ void mma_sp_16832(float c[4], const uint32_t a[4], const uint32_t b[4], uint32_t e) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#if (__CUDACC_VER_MAJOR__ > 12) || (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ >= 5)
#define SPARSE_MMA_SP "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32."
#else
#define SPARSE_MMA_SP "mma.sp.sync.aligned.m16n8k32.row.col.f32."
#endif
  if constexpr (BF16) {
    asm volatile(SPARSE_MMA_SP "bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
  } else {
    asm volatile(SPARSE_MMA_SP "f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
  }
#undef SPARSE_MMA_SP
#endif
}

template <bool BF16>
__device__ __forceinline__ void mma_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (BF16) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#endif
}

/**
 * One CTA computes a BM x BN tile of C with 8 warps (2 along M x 4 along N, 64 x 32 each). A stage
 * holds BK = 64 logical columns: A (compressed: 32 halves per row; dense: 64), B [64][128] and, when
 * sparse, the 8 x 2 metadata tiles. cp.async streams stages STAGES - 1 ahead of the math.
 *   SPARSE: A = values [M, Kp/2] (lda = Kp/2) + meta; else A dense [M, K] (lda).
 *   ALIGNED_B: N, ldb multiples of 8 and B 16-byte aligned, so B rows load as 16-byte chunks;
 *   otherwise B is read element by element (K tails and odd N).
 */
template <bool SPARSE, bool BF16, bool ALIGNED_B>
__global__ void __launch_bounds__(THREADS) gemm_tc_kernel(int M, int N, int K, const uint16_t* __restrict__ A, int lda,
                                                          const uint32_t* __restrict__ meta, const uint16_t* __restrict__ B, int ldb,
                                                          float* __restrict__ C, int ldc, float alpha, float beta) {
  using S = Smem<SPARSE>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int warp_m = warp >> 2;
  const int warp_n = warp & 3;
  // CTAs walk the tiles in groups of GROUP_M row tiles, column after column, so the CTAs running at
  // one time share a few A row panels and B column panels in L2 (a 1-D grid of tilesM * tilesN).
  int m0, n0;
  {
    const int tilesM = (M + BM - 1) / BM;
    const int tilesN = (N + BN - 1) / BN;
    const int pid = blockIdx.x;
    const int perGroup = GROUP_M * tilesN;
    const int firstM = (pid / perGroup) * GROUP_M;
    const int groupM = min(tilesM - firstM, GROUP_M);
    m0 = (firstM + (pid % perGroup) % groupM) * BM;
    n0 = ((pid % perGroup) / groupM) * BN;
  }
  const int Kp = padded_cols24(K);
  // Split-K: CTA row blockIdx.y of gridDim.y takes its share of the k tiles; with more than one
  // split, partial products are added into C (already scaled by beta) atomically.
  const int kTilesAll = SPARSE ? (Kp + BK - 1) / BK : (K + BK - 1) / BK;
  const int kPer = (kTilesAll + int(gridDim.y) - 1) / int(gridDim.y);
  const int kBegin = int(blockIdx.y) * kPer;
  const int kTiles = max(0, min(kTilesAll - kBegin, kPer));
  const int kt32 = Kp / 32;        // metadata column tiles
  const int mt16 = (M + 15) / 16;  // metadata row tiles

  auto stageA = [&](int s) { return reinterpret_cast<uint16_t*>(smem_raw + s * S::STAGE_BYTES); };
  auto stageB = [&](int s) { return stageA(s) + S::A_HALVES; };
  auto stageM = [&](int s) { return reinterpret_cast<uint32_t*>(stageB(s) + S::B_HALVES); };

  auto load_stage = [&](int s, int kt) {
    const int k0 = kt * BK;
    uint16_t* As = stageA(s);
    // A: 16-byte chunks of 8 halves.
    constexpr int A_CHUNKS_PER_ROW = S::A_COLS / 8;
    for (int c = tid; c < BM * A_CHUNKS_PER_ROW; c += THREADS) {
      const int r = c / A_CHUNKS_PER_ROW;
      const int col = (c % A_CHUNKS_PER_ROW) * 8;
      const int gr = m0 + r;
      int gcol;
      bool ok;
      if constexpr (SPARSE) {
        gcol = k0 / 2 + col;
        ok = gr < M && gcol < Kp / 2;
      } else {
        gcol = k0 + col;
        ok = gr < M && gcol + 8 <= K;  // the dense baseline requires K % 8 == 0
      }
      const uint16_t* src = ok ? A + size_t(gr) * lda + gcol : A;
      cp_async16(As + r * S::A_LD + col, src, ok ? 16 : 0);
    }
    uint16_t* Bs = stageB(s);
    if constexpr (ALIGNED_B) {
      for (int c = tid; c < BK * (BN / 8); c += THREADS) {
        const int r = c / (BN / 8);
        const int col = (c % (BN / 8)) * 8;
        const int gk = k0 + r;
        const int gn = n0 + col;
        const bool ok = gk < K && gn < N;  // N % 8 == 0: a chunk is wholly inside or outside
        const uint16_t* src = ok ? B + size_t(gk) * ldb + gn : B;
        cp_async16(Bs + r * S::B_LD + col, src, ok ? 16 : 0);
      }
    } else {
      for (int c = tid; c < BK * BN; c += THREADS) {
        const int r = c / BN;
        const int col = c % BN;
        const int gk = k0 + r;
        const int gn = n0 + col;
        Bs[r * S::B_LD + col] = (gk < K && gn < N) ? B[size_t(gk) * ldb + gn] : uint16_t(0);
      }
    }
    if constexpr (SPARSE) {
      uint32_t* Ms = stageM(s);
      // 8 row tiles x 2 column tiles x 16 words = 64 chunks of 4 words.
      if (tid < 64) {
        const int i = tid / 8;
        const int j = (tid / 4) % 2;
        const int q = tid % 4;
        const int gm = m0 / 16 + i;
        const int gk = k0 / 32 + j;
        uint32_t* dst = Ms + (i * 2 + j) * 16 + q * 4;
        if (gm < mt16 && gk < kt32) {
          cp_async16(dst, meta + (size_t(gm) * kt32 + gk) * 16 + q * 4, 16);
        } else {
          // Tiles past the matrix: valid padding metadata (positions 0 and 1) over zero values.
          dst[0] = dst[1] = dst[2] = dst[3] = 0x44444444u;
        }
      }
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) acc[i][j][r] = 0.f;

#pragma unroll
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < kTiles) load_stage(s, kBegin + s);
    cp_async_commit();
  }

  for (int kt = 0; kt < kTiles; kt++) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      const int next = kt + STAGES - 1;
      if (next < kTiles) load_stage(next % STAGES, kBegin + next);
      cp_async_commit();
    }
    const int s = kt % STAGES;
    const uint16_t* As = stageA(s);
    const uint16_t* Bs = stageB(s);
#pragma unroll
    for (int ks = 0; ks < BK / 32; ks++) {
      uint32_t b[4][4];
#pragma unroll
      for (int ni = 0; ni < 4; ni++) ldmatrix_x4_trans(b[ni], Bs + (ks * 32 + lane) * S::B_LD + warp_n * 32 + ni * 8);
      if constexpr (SPARSE) {
        const uint32_t* Ms = stageM(s);
#pragma unroll
        for (int mi = 0; mi < 4; mi++) {
          uint32_t a[4];
          ldmatrix_x4(a, As + (warp_m * 64 + mi * 16 + (lane & 15)) * S::A_LD + ks * 16 + (lane >> 4) * 8);
          const uint32_t e = Ms[((warp_m * 4 + mi) * 2 + ks) * 16 + (lane >> 2) * 2 + (lane & 1)];
#pragma unroll
          for (int ni = 0; ni < 4; ni++) mma_sp_16832<BF16>(acc[mi][ni], a, b[ni], e);
        }
      } else {
#pragma unroll
        for (int h = 0; h < 2; h++) {
#pragma unroll
          for (int mi = 0; mi < 4; mi++) {
            uint32_t a[4];
            ldmatrix_x4(a, As + (warp_m * 64 + mi * 16 + (lane & 15)) * S::A_LD + ks * 32 + h * 16 + (lane >> 4) * 8);
#pragma unroll
            for (int ni = 0; ni < 4; ni++) mma_16816<BF16>(acc[mi][ni], a, b[ni][2 * h], b[ni][2 * h + 1]);
          }
        }
      }
    }
  }
  cp_async_wait<0>();

  const int g = lane >> 2;
  const int t = lane & 3;
#pragma unroll
  for (int mi = 0; mi < 4; mi++) {
#pragma unroll
    for (int ni = 0; ni < 4; ni++) {
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int row = m0 + warp_m * 64 + mi * 16 + g + h * 8;
        if (row >= M) continue;
#pragma unroll
        for (int q = 0; q < 2; q++) {
          const int col = n0 + warp_n * 32 + ni * 8 + 2 * t + q;
          if (col >= N) continue;
          float* dst = C + size_t(row) * ldc + col;
          const float v = alpha * acc[mi][ni][h * 2 + q];
          if (gridDim.y > 1) atomicAdd(dst, v);
          else *dst = beta == 0.f ? v : v + beta * *dst;
        }
      }
    }
  }
}

/** Nibble of a chunk whose non-zero flags are nz (bit p = position p): positions a < b. */
__device__ __forceinline__ int chunk_positions(unsigned nz, int& a, int& b) {
  const int count = __popc(nz);
  unsigned keep = nz;
  // Fewer than two non-zeros: keep the lowest zero positions as well (their values are zero).
  for (int p = 0; p < 4 && __popc(keep) < 2; p++) keep |= 1u << p;
  a = __ffs(keep) - 1;
  keep &= keep - 1;
  b = __ffs(keep) - 1;
  return count;
}

/**
 * One thread per metadata word: lane word (mt, kt, g, t) covers chunks 8kt + 4t .. +3 of rows
 * 16mt + g and 16mt + g + 8; the thread also writes those chunks' kept values.
 */
template <bool BF16>
__global__ void compress24_kernel(const uint16_t* __restrict__ dense, int rows, int cols, int ld, uint16_t* __restrict__ values,
                                  uint32_t* __restrict__ meta, int* bad) {
  const int Kp = padded_cols24(cols);
  const int kt32 = Kp / 32;
  const size_t words = size_t((rows + 15) / 16) * kt32 * 16;
  const size_t w = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (w >= words) return;
  const int slot = int(w % 16);
  const size_t tile = w / 16;
  const int kt = int(tile % kt32);
  const int mt = int(tile / kt32);
  const int g = slot / 2;
  const int t = slot % 2;
  uint32_t word = 0;
  for (int h = 0; h < 2; h++) {
    const int r = mt * 16 + g + h * 8;
    for (int c = 0; c < 4; c++) {
      const int chunk = kt * 8 + t * 4 + c;
      int a = 0, b = 1;
      if (r < rows) {
        uint16_t x[4];
        unsigned nz = 0;
        for (int p = 0; p < 4; p++) {
          const int j = chunk * 4 + p;
          x[p] = j < cols ? dense[size_t(r) * ld + j] : uint16_t(0);
          if (x[p] & 0x7fff) nz |= 1u << p;  // -0 counts as zero, NaN as non-zero
        }
        if (chunk_positions(nz, a, b) > 2) atomicMin(bad, r * (Kp / 4) + chunk);
        values[size_t(r) * (Kp / 2) + chunk * 2] = x[a];
        values[size_t(r) * (Kp / 2) + chunk * 2 + 1] = x[b];
      }
      word |= uint32_t(a | (b << 2)) << (h * 16 + c * 4);
    }
  }
  meta[w] = word;
}

/**
 * One mma.sp on a single 16 x 32 tile with the fragments filled straight from global memory by the
 * layout formulas above (no ldmatrix, no shared memory), and the metadata word of each lane given
 * explicitly: the test program uses it to check the fragment and metadata layouts in isolation.
 */
template <bool BF16>
__global__ void probe_kernel(const uint16_t* avals, const uint16_t* b, const uint32_t* e, float* c) {
  const int lane = threadIdx.x;
  const int g = lane >> 2, t = lane & 3;
  auto pack = [](uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); };
  uint32_t a[4], bb[4];
  a[0] = pack(avals[g * 16 + 2 * t], avals[g * 16 + 2 * t + 1]);
  a[1] = pack(avals[(g + 8) * 16 + 2 * t], avals[(g + 8) * 16 + 2 * t + 1]);
  a[2] = pack(avals[g * 16 + 2 * t + 8], avals[g * 16 + 2 * t + 9]);
  a[3] = pack(avals[(g + 8) * 16 + 2 * t + 8], avals[(g + 8) * 16 + 2 * t + 9]);
  for (int j = 0; j < 4; j++) bb[j] = pack(b[(8 * j + 2 * t) * 8 + g], b[(8 * j + 2 * t + 1) * 8 + g]);
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  mma_sp_16832<BF16>(acc, a, bb, e[lane]);
  c[g * 8 + 2 * t] = acc[0];
  c[g * 8 + 2 * t + 1] = acc[1];
  c[(g + 8) * 8 + 2 * t] = acc[2];
  c[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

/** C = beta * C over [M, N] (beta == 0: zeros, C not read): the starting point of a split-K sum. */
__global__ void scale_c_kernel(int M, int N, float* C, int ldc, float beta) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= size_t(M) * N) return;
  float* p = C + (i / N) * ldc + i % N;
  *p = beta == 0.f ? 0.f : beta * *p;
}

/** Number of k splits: enough CTAs for two per SM when the tiles alone are fewer, at least 4 k tiles each. */
int choose_splits(int tiles, int kTiles) {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) return 1;
  if (tiles >= 2 * sms || kTiles < 8) return 1;
  return std::max(1, std::min({(2 * sms + tiles - 1) / tiles, kTiles / 4, 16}));
}

template <bool SPARSE, bool BF16, bool ALIGNED_B>
cudaError_t launch_tc(int M, int N, int K, const void* A, int lda, const uint32_t* meta, const void* B, int ldb, float* C, int ldc, float alpha,
                      float beta, cudaStream_t stream) {
  auto kernel = gemm_tc_kernel<SPARSE, BF16, ALIGNED_B>;
  constexpr int bytes = Smem<SPARSE>::BYTES;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err != cudaSuccess) return err;
  const unsigned tiles = unsigned((N + BN - 1) / BN) * unsigned((M + BM - 1) / BM);
  const int kTiles = SPARSE ? (padded_cols24(K) + BK - 1) / BK : (K + BK - 1) / BK;
  const int splits = choose_splits(int(tiles), kTiles);
  if (splits > 1) {
    const size_t n = size_t(M) * N;
    scale_c_kernel<<<unsigned((n + 255) / 256), 256, 0, stream>>>(M, N, C, ldc, beta);
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  kernel<<<dim3(tiles, unsigned(splits)), THREADS, bytes, stream>>>(M, N, K, static_cast<const uint16_t*>(A), lda, meta, static_cast<const uint16_t*>(B), ldb, C, ldc,
                                           alpha, beta);
  return cudaGetLastError();
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

cudaError_t compress24(Half16 type, const void* dense, int rows, int cols, int ld, void* values, uint32_t* meta, int* bad, cudaStream_t stream) {
  if (rows < 0 || cols < 0 || ld < cols) return cudaErrorInvalidValue;
  const size_t words = meta_words24(rows, cols);
  if (words == 0) return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = unsigned((words + threads - 1) / threads);
  auto d = static_cast<const uint16_t*>(dense);
  auto v = static_cast<uint16_t*>(values);
  if (type == Half16::BF16)
    compress24_kernel<true><<<blocks, threads, 0, stream>>>(d, rows, cols, ld, v, meta, bad);
  else
    compress24_kernel<false><<<blocks, threads, 0, stream>>>(d, rows, cols, ld, v, meta, bad);
  return cudaGetLastError();
}

cudaError_t probe_mma_sp(Half16 type, const void* avals, const void* b, const uint32_t* e, float* c, cudaStream_t stream) {
  auto a16 = static_cast<const uint16_t*>(avals);
  auto b16 = static_cast<const uint16_t*>(b);
  if (type == Half16::BF16)
    probe_kernel<true><<<1, 32, 0, stream>>>(a16, b16, e, c);
  else
    probe_kernel<false><<<1, 32, 0, stream>>>(a16, b16, e, c);
  return cudaGetLastError();
}

cudaError_t gemm24(Half16 type, int M, int N, int K, const void* values, const uint32_t* meta, const void* B, int ldb, float* C, int ldc, float alpha,
                   float beta, cudaStream_t stream) {
  if (M < 0 || N < 0 || K < 0 || ldb < N || ldc < N) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  const int lda = padded_cols24(K) / 2;
  const bool aligned = N % 8 == 0 && ldb % 8 == 0 && aligned16(B);
  const bool bf = type == Half16::BF16;
  if (bf) {
    return aligned ? launch_tc<true, true, true>(M, N, K, values, lda, meta, B, ldb, C, ldc, alpha, beta, stream)
                   : launch_tc<true, true, false>(M, N, K, values, lda, meta, B, ldb, C, ldc, alpha, beta, stream);
  }
  return aligned ? launch_tc<true, false, true>(M, N, K, values, lda, meta, B, ldb, C, ldc, alpha, beta, stream)
                 : launch_tc<true, false, false>(M, N, K, values, lda, meta, B, ldb, C, ldc, alpha, beta, stream);
}

cudaError_t gemm_dense_tc(Half16 type, int M, int N, int K, const void* A, int lda, const void* B, int ldb, float* C, int ldc, float alpha, float beta,
                          cudaStream_t stream) {
  if (M < 0 || N < 0 || K < 0 || lda < K || ldb < N || ldc < N) return cudaErrorInvalidValue;
  // 16-byte A chunks: K and lda multiples of 8 (the benchmark shapes are).
  if (K % 8 != 0 || lda % 8 != 0 || !aligned16(A)) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  const bool aligned = N % 8 == 0 && ldb % 8 == 0 && aligned16(B);
  if (type == Half16::BF16) {
    return aligned ? launch_tc<false, true, true>(M, N, K, A, lda, nullptr, B, ldb, C, ldc, alpha, beta, stream)
                   : launch_tc<false, true, false>(M, N, K, A, lda, nullptr, B, ldb, C, ldc, alpha, beta, stream);
  }
  return aligned ? launch_tc<false, false, true>(M, N, K, A, lda, nullptr, B, ldb, C, ldc, alpha, beta, stream)
                 : launch_tc<false, false, false>(M, N, K, A, lda, nullptr, B, ldb, C, ldc, alpha, beta, stream);
}

}  // namespace sparse_cuda
