// The native kernels of a sparse linear layer's training step (linearCSR, linearCSRGradInput,
// sddmmCSR) against the reference kernels of @sparse/tensor (themselves checked against a dense
// brute force there), on the addon's own path (AVX2 where the CPU has it) in this process and on
// the portable scalar path in a child process (SPARSE_FORCE_SCALAR=1). Shapes reach every blocking
// of the kernels: several 64-token strips and SDDMM token blocks, K blocks of sorted rows, row
// chunks, more than one thread; rows may be unsorted, repeat a column, or be empty.
// Tolerance: |native - reference| <= 1e-5 * (|alpha| * sum |products| + |beta * old|) per element;
// everything outside the output must stay bit-for-bit unchanged.
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import {
  ArgumentError,
  DTypeError,
  LayoutError,
  REFERENCE_BACKEND,
  ShapeError,
  getKernel,
  type CSRLayout,
  type LinearCSRArgs,
  type LinearCSRGradInputArgs,
  type SddmmCSRArgs,
} from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { randomArray, rng } from './__fixtures__/gemm-cases.js';
import { nativeSuite } from './__fixtures__/native-suite.js';
import { linearCSRGradInputKernelFrom, linearCSRKernelFrom, sddmmCSRKernelFrom } from './linear.js';
import { nativeStatus, type NativeAddon } from './native.js';

const status = nativeStatus();
const suite = nativeSuite();
const addon = (status.available ? status.addon : undefined) as NativeAddon;

interface Case {
  out: number;
  inp: number;
  tokens: number;
  density: number;
  /** Rows in a shuffled order; with `dup`, one column repeated. */
  shuffle: boolean;
  dup: boolean;
  alpha: number;
  beta: number;
  offsets: [number, number];
  pads: [number, number];
  poison: boolean;
  seed: number;
}

function makeWeight(c: Case, next: () => number): CSRLayout<'float32'> {
  const indptr = new Int32Array(c.out + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < c.out; i++) {
    const row: number[] = [];
    for (let j = 0; j < c.inp; j++) if (next() < c.density) row.push(j);
    if (c.dup && row.length > 0) row.push(row[row.length >> 1]!);
    if (c.shuffle) row.sort(() => next() - 0.5);
    else row.sort((x, y) => x - y);
    for (const j of row) {
      indices.push(j);
      values.push(next() * 2 - 1);
    }
    indptr[i + 1] = indices.length;
  }
  return { format: 'csr', shape: [c.out, c.inp], dtype: 'float32', indptr, indices: Int32Array.from(indices), values: Float32Array.from(values) };
}

/** A [tokens, cols] operand at an offset, with a padded leading dimension and slack after it. */
function operand(tokens: number, cols: number, offset: number, pad: number, next: () => number): { a: Float32Array; ld: number } {
  const ld = Math.max(1, cols) + pad;
  return { a: randomArray(offset + tokens * ld + 3, next), ld };
}

const abs = (a: Float32Array) => a.map(Math.abs);

/** The three calls of one case, each with its output array and, per output element, its error scale. */
interface Prepared {
  linear: LinearCSRArgs;
  gradInput: LinearCSRGradInputArgs;
  sddmm: SddmmCSRArgs;
}

function prepare(c: Case): Prepared {
  const next = rng(c.seed);
  const w = makeWeight(c, next);
  const [o0, o1] = c.offsets;
  const x = operand(c.tokens, c.inp, o0, c.pads[0], next);
  const y = operand(c.tokens, c.out, o1, c.pads[1], next);
  const dy = operand(c.tokens, c.out, o0, c.pads[1], next);
  const dx = operand(c.tokens, c.inp, o1, c.pads[0], next);
  const nnz = w.indptr[c.out]!;
  const g = randomArray(o1 + nnz + 3, next);
  if (c.poison && c.beta === 0) {
    for (let t = 0; t < c.tokens; t++) {
      y.a.fill(NaN, o1 + t * y.ld, o1 + t * y.ld + c.out);
      dx.a.fill(NaN, o1 + t * dx.ld, o1 + t * dx.ld + c.inp);
    }
    g.fill(NaN, o1, o1 + nnz);
  }
  const common = { w, tokens: c.tokens, alpha: c.alpha, beta: c.beta };
  return {
    linear: { ...common, x: x.a, xOffset: o0, ldx: x.ld, y: y.a, yOffset: o1, ldy: y.ld },
    gradInput: { ...common, dy: dy.a, dyOffset: o0, lddy: dy.ld, dx: dx.a, dxOffset: o1, lddx: dx.ld },
    sddmm: { pattern: w, tokens: c.tokens, alpha: c.alpha, beta: c.beta, dy: dy.a, dyOffset: o0, lddy: dy.ld, x: x.a, xOffset: o0, ldx: x.ld, out: g, outOffset: o1 },
  };
}

type Op = 'linearCSR' | 'linearCSRGradInput' | 'sddmmCSR';
const OPS: Op[] = ['linearCSR', 'linearCSRGradInput', 'sddmmCSR'];

function argsOf(p: Prepared, op: Op): LinearCSRArgs | LinearCSRGradInputArgs | SddmmCSRArgs {
  return op === 'linearCSR' ? p.linear : op === 'linearCSRGradInput' ? p.gradInput : p.sddmm;
}

function outputOf(args: LinearCSRArgs | LinearCSRGradInputArgs | SddmmCSRArgs): Float32Array {
  return 'y' in args ? args.y : 'dx' in args ? args.dx : args.out;
}

/** The same call on copies of its output (and, with `absolute`, on |operands| with alpha |alpha| and beta 0). */
function withCopies<A extends LinearCSRArgs | LinearCSRGradInputArgs | SddmmCSRArgs>(args: A, absolute: boolean): A {
  const copy = { ...args } as Record<string, unknown>;
  for (const key of ['y', 'dx', 'out'] as const) if (key in copy) copy[key] = (copy[key] as Float32Array).slice();
  if (absolute) {
    for (const key of ['x', 'dy'] as const) if (key in copy) copy[key] = abs(copy[key] as Float32Array);
    if ('w' in copy) {
      const w = copy.w as CSRLayout<'float32'>;
      copy.w = { ...w, values: abs(w.values) };
    }
    copy.alpha = Math.abs(args.alpha);
    copy.beta = 0;
  }
  return copy as A;
}

/** Which elements of the output array the call writes. */
function outputMask(args: LinearCSRArgs | LinearCSRGradInputArgs | SddmmCSRArgs): Uint8Array {
  const out = outputOf(args);
  const mask = new Uint8Array(out.length);
  if ('out' in args) {
    mask.fill(1, args.outOffset, args.outOffset + args.pattern.indptr[args.pattern.shape[0]]!);
    return mask;
  }
  const [offset, ld, cols] = 'y' in args ? [args.yOffset, args.ldy, args.w.shape[0]] : [args.dxOffset, args.lddx, args.w.shape[1]];
  for (let t = 0; t < args.tokens; t++) mask.fill(1, offset + t * ld, offset + t * ld + cols);
  return mask;
}

/** The native output `got` of `op` against the reference on the same arguments. */
function expectMatchesReference(op: Op, args: LinearCSRArgs | LinearCSRGradInputArgs | SddmmCSRArgs, got: Float32Array, label: string): void {
  const before = outputOf(args);
  const want = withCopies(args, false);
  const scale = withCopies(args, true);
  getKernel(op, REFERENCE_BACKEND)(want as never);
  getKernel(op, REFERENCE_BACKEND)(scale as never);
  const wantOut = outputOf(want);
  const scaleOut = outputOf(scale);
  const inside = outputMask(args);
  for (let e = 0; e < got.length; e++) {
    if (!inside[e]) {
      if (!Object.is(got[e], before[e])) expect.fail(`${label}: ${op} changed element ${e} outside its output: ${before[e]} -> ${got[e]}`);
      continue;
    }
    const tol = 1e-5 * (scaleOut[e]! + (args.beta === 0 ? 0 : Math.abs(args.beta * before[e]!))) + 1e-30;
    if (!(Math.abs(got[e]! - wantOut[e]!) <= tol)) expect.fail(`${label}: ${op} element ${e} = ${got[e]}, reference ${wantOut[e]} (tolerance ${tol})`);
  }
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  out: fc.oneof(fc.constantFrom(0, 1, 7, 8, 9, 17), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 250, max: 330 })),
  inp: fc.oneof(fc.constantFrom(0, 1, 8, 9, 63), fc.integer({ min: 0, max: 90 }), fc.integer({ min: 300, max: 700 })),
  tokens: fc.oneof(fc.constantFrom(0, 1, 7, 8, 9, 31, 63, 64, 65, 129), fc.integer({ min: 0, max: 150 })),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.12, noNaN: true })),
  shuffle: fc.boolean(),
  dup: fc.boolean(),
  alpha: fc.oneof(fc.constantFrom(0, 1, -1, 0.5), fc.double({ min: -3, max: 3, noNaN: true })),
  beta: fc.oneof(fc.constantFrom(0, 1, -0.5), fc.double({ min: -3, max: 3, noNaN: true })),
  offsets: fc.tuple(fc.nat(5), fc.nat(5)),
  pads: fc.tuple(fc.nat(4), fc.nat(4)),
  poison: fc.boolean(),
  seed: fc.integer(),
});

/**
 * Fixed cases past every threshold of the kernels: several K blocks (sorted rows of more than 128
 * values), row chunks of 256 and two threads (over 2M multiply-adds), 64-token strips with a
 * partial last one, SDDMM token blocks of 32-64 with a short last block, the two bench layer shapes
 * at a reduced token count, unsorted rows (one K block), an all-zero mask.
 */
const LARGE: Case[] = [
  { out: 600, inp: 1700, tokens: 70, density: 0.2, shuffle: false, dup: false, alpha: 1.25, beta: 0, offsets: [3, 1], pads: [2, 0], poison: true, seed: 11 },
  { out: 530, inp: 2100, tokens: 133, density: 0.06, shuffle: true, dup: true, alpha: -0.75, beta: 0.5, offsets: [0, 2], pads: [0, 5], poison: false, seed: 12 },
  { out: 1024, inp: 256, tokens: 97, density: 0.1, shuffle: false, dup: false, alpha: 1, beta: 1, offsets: [1, 1], pads: [1, 1], poison: false, seed: 13 },
  { out: 256, inp: 1024, tokens: 64, density: 0.1, shuffle: false, dup: false, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poison: true, seed: 14 },
  { out: 45, inp: 3000, tokens: 200, density: 0.5, shuffle: false, dup: false, alpha: 2, beta: -1, offsets: [7, 0], pads: [3, 2], poison: false, seed: 15 },
  { out: 300, inp: 500, tokens: 41, density: 0, shuffle: false, dup: false, alpha: 1, beta: 0.25, offsets: [0, 0], pads: [0, 0], poison: false, seed: 16 },
];

suite('native sparse linear-layer kernels (this process: the addon\'s own path)', () => {
  const kernels = {
    linearCSR: status.available ? linearCSRKernelFrom(addon) : () => {},
    linearCSRGradInput: status.available ? linearCSRGradInputKernelFrom(addon) : () => {},
    sddmmCSR: status.available ? sddmmCSRKernelFrom(addon) : () => {},
  };

  function check(c: Case): void {
    const p = prepare(c);
    for (const op of OPS) {
      const args = argsOf(p, op);
      const native = withCopies(args, false);
      kernels[op](native as never);
      expectMatchesReference(op, args, outputOf(native), `${status.available ? status.info.simd : ''} ${JSON.stringify(c)}`);
    }
  }

  it('match the reference on random shapes, layouts, offsets, alpha and beta', () => {
    fc.assert(fc.property(caseArb, check), { numRuns: 120 });
  });

  it('match the reference past every blocking threshold (K blocks, row chunks, threads, token strips and blocks)', () => {
    for (const c of LARGE) check(c);
  });

  it('linearCSRGradInput reuses a transposed pattern only while the pattern is the same: new values, a pattern edited in place, more weights than it keeps', () => {
    const base: Case = { out: 90, inp: 70, tokens: 40, density: 0.2, shuffle: false, dup: false, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poison: false, seed: 21 };
    const run = (p: Prepared, label: string) => {
      const native = withCopies(p.gradInput, false);
      kernels.linearCSRGradInput(native);
      expectMatchesReference('linearCSRGradInput', p.gradInput, native.dx, label);
    };
    const p = prepare(base);
    run(p, 'first call');
    // Same arrays, new values (an optimizer step): the gathered values must be the new ones.
    p.gradInput.w.values.forEach((v, k, vals) => (vals[k] = -2 * v + 0.25));
    run(p, 'new values');
    // The pattern edited in place (a mask update that keeps the number of entries): a column moved.
    const { indptr, indices } = p.gradInput.w;
    const row = [...Array(base.out).keys()].find((i) => indptr[i + 1]! > indptr[i]! && indices[indptr[i + 1]! - 1]! < base.inp - 1)!;
    indices[indptr[row + 1]! - 1] = base.inp - 1;
    run(p, 'pattern edited in place');
    // Six weights of the same shape in turn, twice: more than are kept.
    const many = [...Array(6).keys()].map((k) => prepare({ ...base, seed: 100 + k, density: k % 2 === 0 ? 0.2 : 0.05 }));
    for (let round = 0; round < 2; round++) many.forEach((q, k) => run(q, `weight ${k}, round ${round}`));
  });

  it('alpha = 0 reads neither operand (NaN there does not reach the output); beta = 0 never reads the output', () => {
    const p = prepare({ ...LARGE[3]!, alpha: 0, beta: 0.5 });
    p.linear.x.fill(NaN);
    p.gradInput.dy.fill(NaN);
    for (const op of OPS) {
      const args = argsOf(p, op);
      const native = withCopies(args, false);
      kernels[op](native as never);
      const before = outputOf(args);
      const got = outputOf(native);
      for (let e = 0; e < got.length; e++) if (!Number.isNaN(before[e]!)) expect(Number.isNaN(got[e]!)).toBe(false);
      expectMatchesReference(op, args, got, 'alpha 0');
    }
  });
});

// ---- the scalar path, in a child process ----

interface Encoded {
  t: 'f32' | 'i32';
  b64: string;
}
type CallArg = number | boolean | null | Encoded;

function encode(v: unknown): CallArg {
  if (v instanceof Float32Array) return { t: 'f32', b64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (v instanceof Int32Array) return { t: 'i32', b64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  return v as number | boolean | null;
}

function decodeF32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** The positional arguments the wrapper passes to the addon for `args`, recorded instead of run. */
function recordCall(op: Op, args: LinearCSRArgs | LinearCSRGradInputArgs | SddmmCSRArgs): { op: Op; args: CallArg[]; output: number } {
  let recorded: unknown[] = [];
  const record = (...a: unknown[]) => {
    recorded = a;
  };
  const fake = { linearCSR: record, linearCSRGradInput: record, sddmmCSR: record } as unknown as NativeAddon;
  const make = { linearCSR: linearCSRKernelFrom, linearCSRGradInput: linearCSRGradInputKernelFrom, sddmmCSR: sddmmCSRKernelFrom }[op];
  make(fake)(args as never);
  const out = outputOf(args);
  return { op, args: recorded.map(encode), output: recorded.indexOf(out) };
}

// Replays recorded addon calls and prints the outputs; arrays arrive as base64.
const CHILD = `
const fs = require('node:fs');
const { calls } = JSON.parse(fs.readFileSync(0, 'utf8'));
const decode = (v) => {
  if (v === null || typeof v !== 'object') return v;
  const buf = Buffer.from(v.b64, 'base64');
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  return v.t === 'f32' ? new Float32Array(ab) : new Int32Array(ab);
};
const outputs = calls.map(({ op, args, output }) => {
  const a = args.map(decode);
  addon[op](...a);
  const out = a[output];
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('base64');
});
process.stdout.write(JSON.stringify({ simd: addon.info().simd, outputs }));
`;

suite('native sparse linear-layer kernels (child process: the scalar path)', () => {
  it('match the reference with SPARSE_FORCE_SCALAR=1', () => {
    const cases = [...LARGE, ...fc.sample(caseArb, { numRuns: 40, seed: 7 })];
    const calls: Array<{ op: Op; args: CallArg[]; output: number }> = [];
    const expected: Array<{ op: Op; args: LinearCSRArgs | LinearCSRGradInputArgs | SddmmCSRArgs; label: string }> = [];
    for (const c of cases) {
      const p = prepare(c);
      for (const op of OPS) {
        const args = argsOf(p, op);
        calls.push(recordCall(op, args));
        expected.push({ op, args, label: `scalar ${JSON.stringify(c)}` });
      }
    }
    const script = `const addon = require(${JSON.stringify(status.available ? status.path : '')});\n${CHILD}`;
    const r = spawnSync(process.execPath, ['-e', script], {
      input: JSON.stringify({ calls }),
      encoding: 'utf8',
      env: { ...process.env, SPARSE_FORCE_SCALAR: '1' },
      maxBuffer: 1 << 30,
      timeout: 300_000,
    });
    if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
    const { simd, outputs } = JSON.parse(r.stdout) as { simd: string; outputs: string[] };
    expect(simd).toBe('scalar');
    expect(outputs).toHaveLength(expected.length);
    expected.forEach(({ op, args, label }, k) => expectMatchesReference(op, args, decodeF32(outputs[k]!), label));
  }, 300_000);
});

// ---- errors ----

describe('typed errors before any native code runs', () => {
  const trap = () => {
    throw new Error('native code was reached');
  };
  const fake = { linearCSR: trap, linearCSRGradInput: trap, sddmmCSR: trap } as unknown as NativeAddon;
  const p = prepare({ out: 5, inp: 6, tokens: 3, density: 0.5, shuffle: false, dup: false, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poison: false, seed: 1 });

  it('linearCSR', () => {
    const k = linearCSRKernelFrom(fake);
    expect(() => k({ ...p.linear, ldx: 5 })).toThrow(ShapeError);
    expect(() => k({ ...p.linear, y: new Float32Array(4) })).toThrow(ShapeError);
    expect(() => k({ ...p.linear, x: new Float64Array(18) as unknown as Float32Array })).toThrow(DTypeError);
    expect(() => k({ ...p.linear, y: p.linear.x, yOffset: 0 })).toThrow(ArgumentError);
    expect(() => k(p.linear)).toThrow('native code was reached');
    expect(() => k(null as never)).toThrow(ArgumentError);
    expect(() => linearCSRGradInputKernelFrom(fake)(null as never)).toThrow(ArgumentError);
    expect(() => sddmmCSRKernelFrom(fake)(null as never)).toThrow(ArgumentError);
  });

  it('leaves the per-index scan to the binding, and turns its refusal into the typed error', () => {
    // The column range of every stored index is the one check the binding makes first (see
    // index-check.ts). A binding that refuses (RangeError) gets the reference validators' error.
    const refuse = () => {
      throw new RangeError('column index out of range');
    };
    const refusing = { linearCSR: refuse, linearCSRGradInput: refuse, sddmmCSR: refuse } as unknown as NativeAddon;
    const badW = { ...p.linear.w, indices: p.linear.w.indices.map(() => 6) };
    const message = /linearCSR: w\.indices\[0\] = 6 is outside \[0, 6\) \(column\)/;
    expect(() => linearCSRKernelFrom(refusing)({ ...p.linear, w: badW })).toThrow(LayoutError);
    expect(() => linearCSRKernelFrom(refusing)({ ...p.linear, w: badW })).toThrow(message);
    expect(() => linearCSRGradInputKernelFrom(refusing)({ ...p.gradInput, w: badW })).toThrow(LayoutError);
    const badPattern = { ...p.sddmm.pattern, indices: p.sddmm.pattern.indices.map(() => 6) };
    expect(() => sddmmCSRKernelFrom(refusing)({ ...p.sddmm, pattern: badPattern })).toThrow(LayoutError);
    // The TypeScript side did not scan the indices: the call reached the binding.
    let reached = 0;
    const counting = { linearCSR: () => { reached++; refuse(); } } as unknown as NativeAddon;
    expect(() => linearCSRKernelFrom(counting)({ ...p.linear, w: badW })).toThrow(LayoutError);
    expect(reached).toBe(1);
    // A refusal the validators do not explain comes through as it was.
    expect(() => linearCSRKernelFrom(refusing)(p.linear)).toThrow('column index out of range');
  });

  it('linearCSRGradInput', () => {
    const k = linearCSRGradInputKernelFrom(fake);
    expect(() => k({ ...p.gradInput, lddy: 4 })).toThrow(ShapeError);
    expect(() => k({ ...p.gradInput, w: { ...p.gradInput.w, indptr: new Int32Array(3) } })).toThrow(LayoutError);
    expect(() => k({ ...p.gradInput, dx: p.gradInput.dy, dxOffset: 0 })).toThrow(ArgumentError);
    expect(() => k(p.gradInput)).toThrow('native code was reached');
  });

  it('sddmmCSR', () => {
    const k = sddmmCSRKernelFrom(fake);
    expect(() => k({ ...p.sddmm, out: new Float32Array(1) })).toThrow(ShapeError);
    expect(() => k({ ...p.sddmm, tokens: -1 })).toThrow(ShapeError);
    expect(() => k({ ...p.sddmm, out: p.sddmm.dy, outOffset: 0 })).toThrow(ArgumentError);
    expect(() => k(p.sddmm)).toThrow('native code was reached');
  });
});

suite('the binding checks bounds itself', () => {
  it('refuses out-of-range column indices, which the wrappers report as the typed error with C untouched', () => {
    const p = prepare({ out: 5, inp: 6, tokens: 3, density: 0.5, shuffle: false, dup: false, alpha: 1, beta: 0, offsets: [0, 0], pads: [0, 0], poison: false, seed: 1 });
    const badW = { ...p.linear.w, indices: p.linear.w.indices.map((j, q) => (q === 1 ? 6 : j)) };
    const y = p.linear.y.slice();
    expect(() => linearCSRKernelFrom(addon)({ ...p.linear, w: badW, y })).toThrow(/linearCSR: w\.indices\[1\] = 6 is outside \[0, 6\) \(column\)/);
    expect(y).toEqual(p.linear.y);
    expect(() => linearCSRGradInputKernelFrom(addon)({ ...p.gradInput, w: badW })).toThrow(LayoutError);
    const badPattern = { ...p.sddmm.pattern, indices: p.sddmm.pattern.indices.map((j, q) => (q === 0 ? -2 : j)) };
    expect(() => sddmmCSRKernelFrom(addon)({ ...p.sddmm, pattern: badPattern })).toThrow(/sddmmCSR: pattern\.indices\[0\] = -2 is outside/);
  });

  it('rejects out-of-range calls made directly on the addon', () => {
    const f = (n: number) => new Float32Array(n);
    const ptr = Int32Array.from([0, 1, 2]);
    const idx = Int32Array.from([0, 2]);
    // W [2, 3]: X [2, 3], Y [2, 2].
    expect(() => addon.linearCSR!(2, 3, ptr, Int32Array.from([0, 3]), f(2), 2, 1, f(6), 0, 3, 0, f(4), 0, 2)).toThrow(RangeError);
    expect(() => addon.linearCSR!(2, 3, Int32Array.from([0, 2, 1]), idx, f(2), 2, 1, f(6), 0, 3, 0, f(4), 0, 2)).toThrow(RangeError);
    expect(() => addon.linearCSR!(2, 3, ptr, idx, f(2), 2, 1, f(5), 0, 3, 0, f(4), 0, 2)).toThrow(RangeError);
    expect(() => addon.linearCSR!(2, 3, ptr, idx, f(2), 2, 1, f(6), 0, 3, 0, f(4), 1, 2)).toThrow(RangeError);
    const shared = f(12);
    expect(() => addon.linearCSR!(2, 3, ptr, idx, f(2), 2, 1, shared, 0, 3, 0, shared, 4, 2)).toThrow(RangeError);
    expect(() => addon.linearCSRGradInput!(2, 3, ptr, idx, f(2), 2, 1, f(4), 0, 2, 0, f(5), 0, 3)).toThrow(RangeError);
    expect(() => addon.linearCSRGradInput!(2, 3, ptr, idx, f(1), 2, 1, f(4), 0, 2, 0, f(6), 0, 3)).toThrow(RangeError);
    expect(() => addon.sddmmCSR!(2, 3, ptr, idx, 2, 1, f(4), 0, 2, f(6), 0, 3, 0, f(1), 0)).toThrow(RangeError);
    expect(() => addon.sddmmCSR!(2, 3, ptr, idx, 2, 1, f(4), 0, 2, f(6), 0, 2, 0, f(2), 0)).toThrow(RangeError);
    expect(() => addon.sddmmCSR!(2, 3, ptr, idx, 2, 1, shared, 0, 2, f(6), 0, 3, 0, shared, 3)).toThrow(RangeError);
    // Outputs over the bytes of indptr or indices.
    const ints = Int32Array.from([0, 1, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    const ptrView = ints.subarray(0, 3);
    const idxView = ints.subarray(3, 5);
    expect(() => addon.linearCSR!(2, 3, ptrView, idxView, f(2), 2, 1, f(6), 0, 3, 0, new Float32Array(ints.buffer, 12, 4), 0, 2)).toThrow(RangeError);
    expect(() => addon.linearCSRGradInput!(2, 3, ptrView, idxView, f(2), 2, 1, f(4), 0, 2, 0, new Float32Array(ints.buffer, 0, 6), 0, 3)).toThrow(RangeError);
    expect(() => addon.sddmmCSR!(2, 3, ptrView, idxView, 2, 1, f(4), 0, 2, f(6), 0, 3, 0, new Float32Array(ints.buffer, 16, 2), 0)).toThrow(RangeError);
    expect(() => addon.sddmmCSR!(2, 3, ptrView, idxView, 2, 1, f(4), 0, 2, f(6), 0, 3, 0, new Float32Array(ints.buffer, 20, 2), 0)).not.toThrow();
  });
});
