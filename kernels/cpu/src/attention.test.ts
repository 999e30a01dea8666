// The native block-sparse attention extensions (partial tiles through an element mask, lse, tile
// counts), the attention backward and the bitmap-KV decode attention against the float64 reference
// kernels of @sparse/tensor: odd sequence lengths (not multiples of the block or of the 64-row
// chunks), per-head and shared masks, causal, grouped-query heads, head dims that are not multiples
// of 8 or 16 (tails of every vector width); the best kernel family in this process (scripts/test-isas.mjs
// reruns the file under every other family the machine runs) and the portable path in a child with
// SPARSE_FORCE_SCALAR=1.
// Tolerances: float32 sums of at most seq terms against float64 (see each check).
import { spawnSync } from 'node:child_process';
import {
  ArgumentError,
  REFERENCE_BACKEND,
  getKernel,
  type AttentionBitmapKVArgs,
  type BlockSparseAttentionArgs,
  type BlockSparseAttentionBackwardArgs,
} from '@sparse/tensor';
import { expect, it } from 'vitest';
import { nativeSuite } from './__fixtures__/native-suite.js';
import { nativeStatus, type NativeAddon } from './native.js';
import { attentionBitmapKVKernelFrom, blockSparseAttentionBackwardKernelFrom, blockSparseAttentionKernelFrom } from './ops.js';

const status = nativeStatus();
const addon = (status.available ? status.addon : undefined) as NativeAddon;
const suite = nativeSuite(
  status.available && !status.info.kernels.includes('attentionBackward') ? 'this build has no attentionBackward' : status.available ? undefined : status.reason,
);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uniform(n: number, next: () => number, amp = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * amp);
}

interface Case {
  heads: number;
  seq: number;
  d: number;
  bs: number;
  causal: boolean;
  perHeadBlocks: boolean;
  perHeadElements: boolean;
  /** Probabilities of tile values 0, 1 (rest: 2). */
  p0: number;
  p1: number;
  seed: number;
}

function forwardCase(c: Case): BlockSparseAttentionArgs {
  const next = rng(c.seed);
  const nb = Math.ceil(c.seq / c.bs);
  const blockMask = Uint8Array.from({ length: (c.perHeadBlocks ? c.heads : 1) * nb * nb }, () => {
    const x = next();
    return x < c.p0 ? 0 : x < c.p0 + c.p1 ? 1 : 2;
  });
  const bits = (c.perHeadElements ? c.heads : 1) * c.seq * c.seq;
  const elementMask = new Uint8Array(Math.ceil(bits / 8));
  for (let n = 0; n < bits; n++) if (next() < 0.5) elementMask[n >> 3]! |= 1 << (n & 7);
  const size = c.heads * c.seq * c.d;
  return {
    heads: c.heads, seq: c.seq, headDim: c.d, q: uniform(size + 1, next, 2), qOffset: 1, k: uniform(size, next), kOffset: 0,
    v: uniform(size + 2, next), vOffset: 2, out: new Float32Array(size + 3).fill(NaN), outOffset: 3, causal: c.causal,
    blockSize: c.bs, blockMask, elementMask, lse: new Float32Array(c.heads * c.seq + 1).fill(NaN), lseOffset: 1, stats: { tiles: 0 },
  };
}

function copyForward(a: BlockSparseAttentionArgs): BlockSparseAttentionArgs {
  return { ...a, out: a.out.slice(), lse: a.lse?.slice(), stats: a.stats ? { tiles: a.stats.tiles } : undefined };
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]!)) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

function expectClose(got: Float32Array, want: Float32Array, tol: number, label: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      if (!Object.is(g, w)) expect.fail(`${label}[${i}]: got ${g}, want ${w}`);
      continue;
    }
    if (!(Math.abs(g - w) <= tol)) expect.fail(`${label}[${i}]: got ${g}, want ${w} (error ${Math.abs(g - w)}, tolerance ${tol})`);
  }
}

const CASES: Case[] = [
  { heads: 2, seq: 37, d: 5, bs: 8, causal: false, perHeadBlocks: false, perHeadElements: false, p0: 0.3, p1: 0.3, seed: 1 },
  { heads: 3, seq: 101, d: 16, bs: 16, causal: true, perHeadBlocks: true, perHeadElements: false, p0: 0.3, p1: 0.3, seed: 2 },
  { heads: 2, seq: 150, d: 24, bs: 64, causal: true, perHeadBlocks: false, perHeadElements: true, p0: 0.2, p1: 0.4, seed: 3 },
  { heads: 1, seq: 200, d: 64, bs: 128, causal: false, perHeadBlocks: true, perHeadElements: true, p0: 0.2, p1: 0.3, seed: 4 },
  { heads: 2, seq: 130, d: 32, bs: 32, causal: true, perHeadBlocks: true, perHeadElements: false, p0: 0, p1: 1, seed: 5 },
  { heads: 1, seq: 9, d: 3, bs: 4, causal: true, perHeadBlocks: false, perHeadElements: false, p0: 0, p1: 0, seed: 6 },
  { heads: 2, seq: 300, d: 16, bs: 128, causal: true, perHeadBlocks: true, perHeadElements: false, p0: 0.2, p1: 0.5, seed: 7 },
  { heads: 1, seq: 250, d: 8, bs: 48, causal: true, perHeadBlocks: false, perHeadElements: true, p0: 0.2, p1: 0.4, seed: 8 },
  // Four or more heads per pool thread (2 here): one single-pass item per head, dQ accumulated per thread.
  { heads: 5, seq: 140, d: 16, bs: 32, causal: true, perHeadBlocks: true, perHeadElements: false, p0: 0.2, p1: 0.4, seed: 10 },
  { heads: 4, seq: 77, d: 8, bs: 16, causal: false, perHeadBlocks: false, perHeadElements: true, p0: 0.2, p1: 0.4, seed: 11 },
  // Head dims and key runs around the 8- and 16-lane vectors and their masked tails (17, 33: one lane
  // past a vector; 15: one short; 1: a tail only).
  { heads: 2, seq: 83, d: 17, bs: 16, causal: true, perHeadBlocks: false, perHeadElements: true, p0: 0.2, p1: 0.4, seed: 12 },
  { heads: 1, seq: 97, d: 33, bs: 33, causal: false, perHeadBlocks: false, perHeadElements: false, p0: 0.1, p1: 0.6, seed: 13 },
  { heads: 2, seq: 47, d: 15, bs: 17, causal: true, perHeadBlocks: true, perHeadElements: false, p0: 0.1, p1: 0.6, seed: 14 },
  { heads: 1, seq: 31, d: 1, bs: 15, causal: false, perHeadBlocks: false, perHeadElements: true, p0: 0, p1: 0.5, seed: 15 },
];

const label = (c: Case) =>
  `heads ${c.heads}, seq ${c.seq}, headDim ${c.d}, block ${c.bs}${c.causal ? ', causal' : ''}${c.perHeadBlocks ? ', per-head tiles' : ''}${c.perHeadElements ? ', per-head element mask' : ''}`;

suite('block-sparse attention with partial tiles (native vs reference)', () => {
  for (const c of CASES) {
    it(`forward, lse and tile counts: ${label(c)}`, () => {
      const a = forwardCase(c);
      const want = copyForward(a);
      getKernel('blockSparseAttention', REFERENCE_BACKEND)(want);
      blockSparseAttentionKernelFrom(addon)(a);
      // Weights in [0, 1] summing to 1 over values in [-1, 1]: float32 rounding of seq-term sums.
      expectClose(a.out, want.out, 2e-6, 'out');
      expectClose(a.lse!, want.lse!, 2e-6 * (1 + maxAbs(want.lse!)), 'lse');
      expect(a.stats!.tiles).toBe(want.stats!.tiles);
    });
  }

  it('without lse, stats or partial tiles the 15-argument path still runs; a partial tile needs an element mask', () => {
    const a = forwardCase(CASES[4]!);
    delete a.lse;
    delete a.stats;
    const want = copyForward(a);
    getKernel('blockSparseAttention', REFERENCE_BACKEND)(want);
    blockSparseAttentionKernelFrom(addon)(a);
    expectClose(a.out, want.out, 2e-6, 'out');
    const b = forwardCase(CASES[0]!);
    delete b.elementMask;
    expect(() => blockSparseAttentionKernelFrom(addon)(b)).toThrow(ArgumentError);
    const f = new Float32Array(8);
    expect(() => addon.attention!(1, 4, 2, f, 0, f, 0, f, 0, new Float32Array(8), 0, false, 1, 2, Uint8Array.from([1, 2, 0, 1]))).toThrow(/element mask/);
    expect(() => addon.attention!(1, 4, 2, f, 0, f, 0, f, 0, new Float32Array(8), 0, false, 1, 2, Uint8Array.from([1, 2, 0, 1]), new Uint8Array(3), null, 0)).toThrow(/elementMask length/);
  });
});

function backwardCase(c: Case): BlockSparseAttentionBackwardArgs {
  const f = forwardCase(c);
  getKernel('blockSparseAttention', REFERENCE_BACKEND)(f);
  const size = c.heads * c.seq * c.d;
  const next = rng(c.seed + 1000);
  return {
    heads: c.heads, seq: c.seq, headDim: c.d, q: f.q, qOffset: f.qOffset, k: f.k, kOffset: f.kOffset, v: f.v, vOffset: f.vOffset,
    out: f.out, outOffset: f.outOffset, dOut: uniform(size + 4, next), dOutOffset: 4, lse: f.lse!, lseOffset: f.lseOffset!,
    causal: c.causal, blockSize: c.bs, blockMask: f.blockMask, elementMask: f.elementMask,
    dq: new Float32Array(size + 1).fill(NaN), dqOffset: 1, dk: new Float32Array(size).fill(NaN), dkOffset: 0, dv: new Float32Array(size + 2).fill(NaN), dvOffset: 2,
    stats: { tiles: 0 },
  };
}

function copyBackward(a: BlockSparseAttentionBackwardArgs): BlockSparseAttentionBackwardArgs {
  return { ...a, dq: a.dq.slice(), dk: a.dk.slice(), dv: a.dv.slice(), stats: { tiles: 0 } };
}

function checkBackward(got: BlockSparseAttentionBackwardArgs, want: BlockSparseAttentionBackwardArgs, what: string): void {
  // Sums over at most seq terms of size |P| |dOut| |q or k| (and the same for dS): float32 rounding
  // against float64, relative to the largest gradient entry.
  for (const name of ['dq', 'dk', 'dv'] as const) {
    expectClose(got[name], want[name], 2e-5 * (1 + maxAbs(want[name])), `${what} ${name}`);
  }
}

suite('block-sparse attention backward (native vs reference)', () => {
  for (const c of CASES) {
    it(`dq, dk, dv and tile counts: ${label(c)}`, () => {
      const a = backwardCase(c);
      const want = copyBackward(a);
      getKernel('blockSparseAttentionBackward', REFERENCE_BACKEND)(want);
      blockSparseAttentionBackwardKernelFrom(addon)(a);
      checkBackward(a, want, label(c));
      expect(a.stats!.tiles).toBe(want.stats!.tiles);
    });
  }

  it('dense mask and custom scale; rows with no allowed key get zero gradients', () => {
    const c: Case = { heads: 2, seq: 70, d: 8, bs: 16, causal: false, perHeadBlocks: false, perHeadElements: false, p0: 0, p1: 1, seed: 9 };
    const a = { ...backwardCase(c), scale: 0.3 };
    // Recompute the forward's lse at this scale, and blank query block 1 entirely.
    const nb = Math.ceil(c.seq / c.bs);
    a.blockMask = new Uint8Array(nb * nb).fill(1);
    a.blockMask.fill(0, nb, 2 * nb);
    const f: BlockSparseAttentionArgs = { ...a, out: a.out, lse: a.lse, lseOffset: a.lseOffset, stats: undefined };
    getKernel('blockSparseAttention', REFERENCE_BACKEND)(f);
    const want = copyBackward(a);
    getKernel('blockSparseAttentionBackward', REFERENCE_BACKEND)(want);
    blockSparseAttentionBackwardKernelFrom(addon)(a);
    checkBackward(a, want, 'dense');
    for (let i = 16; i < 32; i++) for (let x = 0; x < 8; x++) expect(a.dq[a.dqOffset + i * 8 + x]).toBe(0);
  });
});

function packCache(next: () => number, rows: number, d: number, density: number): { bits: Uint8Array; values: Float32Array; start: Int32Array } {
  const rowBytes = Math.ceil(d / 8);
  const bits = new Uint8Array(rows * rowBytes);
  const values: number[] = [];
  const start = new Int32Array(rows + 1);
  for (let r = 0; r < rows; r++) {
    start[r] = values.length;
    for (let c = 0; c < d; c++) {
      if (next() >= density) continue;
      bits[r * rowBytes + (c >> 3)]! |= 1 << (c & 7);
      values.push(next() * 2 - 1);
    }
  }
  start[rows] = values.length;
  return { bits, values: Float32Array.from(values), start };
}

function bitmapCase(heads: number, kvHeads: number, d: number, positions: number, density: number, seed: number): AttentionBitmapKVArgs {
  const next = rng(seed);
  const k = packCache(next, positions * kvHeads, d, density);
  const v = packCache(next, positions * kvHeads, d, density);
  return {
    heads, kvHeads, headDim: d, positions, q: uniform(heads * d + 1, next, 3), qOffset: 1, kBits: k.bits, kValues: k.values, kStart: k.start,
    vBits: v.bits, vValues: v.values, vStart: v.start, out: new Float32Array(heads * d + 2).fill(NaN), outOffset: 2,
  };
}

const BITMAP_CASES: Array<[number, number, number, number, number]> = [
  // heads, kvHeads, headDim, positions, density
  [4, 2, 12, 7, 0.5],
  [8, 8, 64, 100, 0.3],
  [6, 2, 20, 333, 0.8],
  [8, 2, 64, 3000, 0.5],
  [2, 1, 7, 1, 1],
  [3, 3, 16, 0, 0.5],
  [4, 1, 8, 50, 0],
  // Head dims around the 8- and 16-lane vectors: the expansion's masked tail (two bitmap bytes or one),
  // and full rows (density 1) where the wide loads meet the end of the value array.
  [2, 1, 1, 9, 0.5],
  [3, 1, 15, 40, 0.7],
  [2, 2, 17, 40, 1],
  [4, 2, 33, 61, 0.6],
  [2, 1, 100, 30, 0.9],
  [2, 1, 1003, 5, 1],
];

suite('attention over a bitmap KV cache (native vs reference)', () => {
  for (const [heads, kvHeads, d, positions, density] of BITMAP_CASES) {
    it(`heads ${heads}, kvHeads ${kvHeads}, headDim ${d}, positions ${positions}, density ${density}`, () => {
      const a = bitmapCase(heads, kvHeads, d, positions, density, heads * 31 + positions);
      const want = { ...a, out: a.out.slice() };
      getKernel('attentionBitmapKV', REFERENCE_BACKEND)(want);
      attentionBitmapKVKernelFrom(addon)(a);
      expectClose(a.out, want.out, 3e-6, 'out');
    });
  }

  it('the binding rejects value counts that disagree with the bitmaps', () => {
    const a = bitmapCase(2, 1, 8, 3, 0.5, 1);
    const bad = Int32Array.from(a.kStart);
    bad[3]! += 1;
    expect(() =>
      addon.attentionBitmapKV!(2, 1, 8, 3, a.q, 1, a.kBits, a.kValues, bad, a.vBits, a.vValues, a.vStart, a.out, 2, 1),
    ).toThrow(/kStart disagrees/);
  });
});

// The portable row kernels, in a child process that forces the scalar path (on one thread).
const CHILD = `
const addon = require(process.argv[1]);
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const f32 = (x) => Float32Array.from(x);
const outs = [];
for (const b of input.backward) {
  const dq = new Float32Array(b.size), dk = new Float32Array(b.size), dv = new Float32Array(b.size);
  addon.attentionBackward(b.heads, b.seq, b.d, f32(b.q), 0, f32(b.k), 0, f32(b.v), 0, f32(b.out), 0, f32(b.dOut), 0, f32(b.lse), 0,
    b.causal, b.scale, b.bs, Uint8Array.from(b.blockMask), Uint8Array.from(b.elementMask), dq, 0, dk, 0, dv, 0);
  outs.push([...dq], [...dk], [...dv]);
}
for (const k of input.bitmap) {
  const out = new Float32Array(k.heads * k.d);
  addon.attentionBitmapKV(k.heads, k.kvHeads, k.d, k.positions, f32(k.q), 0, Uint8Array.from(k.kBits), f32(k.kValues), Int32Array.from(k.kStart),
    Uint8Array.from(k.vBits), f32(k.vValues), Int32Array.from(k.vStart), out, 0, k.scale);
  outs.push([...out]);
}
process.stdout.write(JSON.stringify({ simd: addon.info().simd, outs }));
`;

/** Inputs for CHILD (offsets dropped) with their reference results. */
function childCases(cases: Case[], bitmaps: typeof BITMAP_CASES) {
  const backward = cases.map((c) => {
    const a = backwardCase(c);
    const want = copyBackward(a);
    getKernel('blockSparseAttentionBackward', REFERENCE_BACKEND)(want);
    const size = c.heads * c.seq * c.d;
    const sub = (x: Float32Array, off: number) => [...x.subarray(off, off + size)];
    return {
      want,
      input: {
        heads: c.heads, seq: c.seq, d: c.d, size, causal: c.causal, bs: c.bs, scale: 1 / Math.sqrt(c.d),
        q: sub(a.q, a.qOffset), k: sub(a.k, a.kOffset), v: sub(a.v, a.vOffset), out: sub(a.out, a.outOffset), dOut: sub(a.dOut, a.dOutOffset),
        lse: [...a.lse.subarray(a.lseOffset, a.lseOffset + c.heads * c.seq)], blockMask: [...a.blockMask], elementMask: [...a.elementMask!],
      },
    };
  });
  const bitmap = bitmaps.map(([heads, kvHeads, d, positions, density]) => {
    const a = { ...bitmapCase(heads, kvHeads, d, positions, density, 77 + d), qOffset: 0, outOffset: 0 };
    a.q = a.q.subarray(0, heads * d);
    a.out = new Float32Array(heads * d);
    const want = { ...a, out: a.out.slice() };
    getKernel('attentionBitmapKV', REFERENCE_BACKEND)(want);
    return {
      want,
      input: {
        heads, kvHeads, d, positions, scale: 1 / Math.sqrt(d), q: [...a.q], kBits: [...a.kBits], kValues: [...a.kValues], kStart: [...a.kStart],
        vBits: [...a.vBits], vValues: [...a.vValues], vStart: [...a.vStart],
      },
    };
  });
  return { backward, bitmap };
}

/** Runs CHILD with `env` on the cases; checks every output against its reference; returns the outputs. */
function runChild(env: Record<string, string>, isa: string, cases: ReturnType<typeof childCases>): number[][] {
  const { backward, bitmap } = cases;
  const r = spawnSync(process.execPath, ['-e', CHILD, status.available ? status.path : ''], {
    input: JSON.stringify({ backward: backward.map((b) => b.input), bitmap: bitmap.map((b) => b.input) }),
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 1 << 30,
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  const { simd, outs } = JSON.parse(r.stdout) as { simd: string; outs: number[][] };
  expect(simd).toBe(isa);
  let at = 0;
  for (const b of backward) {
    const size = b.input.size;
    for (const [name, arr, off] of [['dq', b.want.dq, b.want.dqOffset], ['dk', b.want.dk, b.want.dkOffset], ['dv', b.want.dv, b.want.dvOffset]] as const) {
      const want = arr.subarray(off, off + size);
      expectClose(Float32Array.from(outs[at++]!), want, 2e-5 * (1 + maxAbs(want)), `${isa} ${name} (headDim ${b.input.d})`);
    }
  }
  for (const b of bitmap) expectClose(Float32Array.from(outs[at++]!), b.want.out, 3e-6, `${isa} bitmap out (headDim ${b.input.d})`);
  return outs;
}

suite('attention kernels (child process: the scalar path)', () => {
  it('match the reference with SPARSE_FORCE_SCALAR=1', () => {
    // One thread: the backward then runs its single-pass (per-head) path, the parent mostly the two-pass one.
    runChild({ SPARSE_CPU_ISA: 'scalar', SPARSE_FORCE_SCALAR: '1', SPARSE_NUM_THREADS: '1' }, 'scalar', childCases(CASES.slice(0, 3), BITMAP_CASES.slice(0, 4)));
  }, 120_000);
});

// Every vector family this machine runs, in a child each (SPARSE_CPU_ISA; the family that ran is
// checked): the backward and the bitmap-KV decode against the references, on head dims around the 8-
// and 16-lane vectors. The 16-wide row kernels of the decode (expansion, dot, axpy) reproduce the AVX2
// ones' operations in order, so the decode's outputs must equal the avx2 family's (the backward's also
// go through each family's own gemm, so only the tolerance applies there).
suite('attention kernels in every vector family (child processes)', () => {
  const cpu = status.available ? status.info.cpu : undefined;
  const built = new Set((cpu?.built ?? '').split(','));
  const families = [
    { isa: 'avx512-emu', runs: built.has('avx512-emu') && cpu?.avx2 === true, why: built.has('avx512-emu') ? 'this CPU lacks AVX2+FMA' : 'built without the 16-wide kernels' },
    { isa: 'avx512', runs: built.has('avx512') && cpu?.avx512 === true, why: built.has('avx512') ? 'this CPU or OS lacks AVX-512 F/BW/VL' : 'built without the 16-wide kernels' },
  ];
  const bitmaps: typeof BITMAP_CASES = [
    [2, 1, 1, 9, 0.5],
    [3, 1, 7, 20, 0.7],
    [2, 1, 9, 20, 0.6],
    [3, 1, 15, 40, 0.7],
    [2, 2, 17, 40, 1],
    [4, 2, 24, 30, 0.5],
    [4, 2, 33, 61, 0.6],
    [8, 8, 64, 100, 0.3],
    [2, 1, 100, 30, 0.9],
    [2, 1, 1003, 5, 1],
    [4, 1, 8, 50, 0],
  ];
  for (const f of families) {
    it.skipIf(!f.runs || !built.has('avx2'))(`${f.isa}: references, and the avx2 family's decode outputs exactly${f.runs ? '' : ` (skipped: ${f.why})`}`, () => {
      const cases = childCases(CASES.slice(10), bitmaps);
      const wide = runChild({ SPARSE_CPU_ISA: f.isa }, f.isa, cases);
      const avx2 = runChild({ SPARSE_CPU_ISA: 'avx2' }, 'avx2', cases);
      const first = cases.backward.length * 3;
      for (let i = first; i < wide.length; i++) {
        const got = wide[i]!;
        const want = avx2[i]!;
        const at = got.findIndex((v, j) => !(v === want[j] || (Number.isNaN(v) && Number.isNaN(want[j]!))));
        expect(at, `${f.isa} bitmap headDim ${bitmaps[i - first]![2]}: ${got[at]} vs avx2 ${want[at]}`).toBe(-1);
      }
    }, 120_000);
  }
});
