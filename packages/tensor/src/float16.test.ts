import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cast,
  decodeBFloat16,
  decodeFloat16,
  decodeValue,
  encodeBFloat16,
  encodeFloat16,
  encodeValue,
  float32BitsToBFloat16,
  float32BitsToFloat16,
  fromBFloat16,
  fromFloat16,
  roundBFloat16,
  roundFloat16,
  toBFloat16,
  toFloat16,
} from './float16.js';
import { tensor, toArray, transpose, slice, zeros } from './tensor.js';
import { DTypeError } from './errors.js';

// ---- Independent reference: decode by the textbook formula, encode by searching all values. ----

interface Format {
  mantBits: number;
  bias: number;
  infBits: number;
}
const F16: Format = { mantBits: 10, bias: 15, infBits: 0x7c00 };
const BF16: Format = { mantBits: 7, bias: 127, infBits: 0x7f80 };

/** Value of a non-negative finite pattern from the definition sign * 2^(e-bias) * (1 + m/2^p). */
function refDecode(f: Format, bits: number): number {
  const e = bits >> f.mantBits;
  const m = bits & ((1 << f.mantBits) - 1);
  const frac = m / 2 ** f.mantBits;
  return e === 0 ? frac * Math.pow(2, 1 - f.bias) : (1 + frac) * Math.pow(2, e - f.bias);
}

/** Sorted non-negative candidates: every finite pattern plus the infinity pattern standing for 2^(emax+1). */
function candidates(f: Format): Float64Array {
  const vals = new Float64Array(f.infBits + 1);
  for (let b = 0; b < f.infBits; b++) vals[b] = refDecode(f, b);
  vals[f.infBits] = Math.pow(2, (f.infBits >> f.mantBits) - f.bias); // IEEE: round as if the exponent were unbounded
  return vals;
}
const CAND16 = candidates(F16);
const CANDB16 = candidates(BF16);

/** Nearest pattern by binary search over all candidates; ties to the even pattern; beyond the top -> infinity. */
function refEncode(f: Format, cand: Float64Array, x: number): number {
  if (Number.isNaN(x)) return NaN;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= cand[f.infBits]!) return sign | f.infBits;
  let lo = 0;
  let hi = f.infBits; // cand[lo] <= a < cand[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (cand[mid]! <= a) lo = mid;
    else hi = mid;
  }
  const dl = a - cand[lo]!;
  const dh = cand[hi]! - a;
  const pick = dl < dh ? lo : dh < dl ? hi : lo % 2 === 0 ? lo : hi;
  return sign | pick;
}

const isNaN16 = (b: number) => (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;
const isNaNB16 = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;

function f32FromBits(u: number): number {
  return new Float32Array(new Uint32Array([u]).buffer)[0]!;
}

describe('float16 hand-computed patterns', () => {
  const cases: Array<[number, number]> = [
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [65519.99, 0x7bff], // just below the overflow tie
    [65520, 0x7c00], // the tie between 65504 and 2^16 goes to the even side, which is infinity
    [-65520, 0xfc00],
    [1e6, 0x7c00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -25, 0x0400], // 1023.5 subnormal units -> ties to even 1024 = smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // half the smallest subnormal ties to even zero
    [2 ** -25 * (1 + 2 ** -30), 0x0001], // just above the tie
    [3 * 2 ** -25, 0x0002], // 1.5 units ties to 2
    [5 * 2 ** -25, 0x0002], // 2.5 units ties to 2
    [7 * 2 ** -25, 0x0004], // 3.5 units ties to 4
    [1e-8, 0x0000],
    [-1e-8, 0x8000],
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1+2^-10: down to even
    [1 + 3 * 2 ** -11, 0x3c02], // halfway between 0x3c01 and 0x3c02: up to even
    [1 + 2 ** -11 + 2 ** -40, 0x3c01], // a bit past the tie (only visible from float64)
    [1 + 2 ** -11 - 2 ** -40, 0x3c00],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [Math.PI, 0x4248],
    [-0, 0x8000],
    [0, 0x0000],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ];
  it.each(cases)('toFloat16(%d) = %i', (x, bits) => {
    expect(toFloat16(x)).toBe(bits);
  });

  it('NaN becomes a quiet NaN', () => {
    expect(toFloat16(NaN)).toBe(0x7e00);
    expect(Number.isNaN(fromFloat16(0x7e00))).toBe(true);
    expect(Number.isNaN(fromFloat16(0x7c01))).toBe(true);
    expect(Number.isNaN(fromFloat16(0xfe00))).toBe(true);
  });

  it('decodes the special patterns', () => {
    expect(fromFloat16(0x3c00)).toBe(1);
    expect(fromFloat16(0x7bff)).toBe(65504);
    expect(fromFloat16(0x0001)).toBe(2 ** -24);
    expect(fromFloat16(0x03ff)).toBe(1023 * 2 ** -24);
    expect(Object.is(fromFloat16(0x8000), -0)).toBe(true);
    expect(fromFloat16(0x7c00)).toBe(Infinity);
    expect(fromFloat16(0xfc00)).toBe(-Infinity);
  });
});

describe('bfloat16 hand-computed patterns', () => {
  const cases: Array<[number, number]> = [
    [1, 0x3f80],
    [-1, 0xbf80],
    [1 + 2 ** -8, 0x3f80], // tie to even (down)
    [1 + 3 * 2 ** -8, 0x3f82], // tie to even (up)
    [1 + 2 ** -8 + 2 ** -30, 0x3f81], // past the tie; rounding through float32 first would give 0x3f80
    [Math.PI, 0x4049],
    [(2 - 2 ** -7) * 2 ** 127, 0x7f7f], // largest finite
    [(2 - 2 ** -8) * 2 ** 127, 0x7f80], // overflow tie -> infinity
    [2 ** -133, 0x0001], // smallest subnormal
    [2 ** -134, 0x0000], // tie to even zero
    [3 * 2 ** -134, 0x0002],
    [2 ** -126, 0x0080], // smallest normal
    [-0, 0x8000],
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
  ];
  it.each(cases)('toBFloat16(%d) = %i', (x, bits) => {
    expect(toBFloat16(x)).toBe(bits);
  });

  it('NaN becomes a quiet NaN and decodes as NaN', () => {
    expect(toBFloat16(NaN)).toBe(0x7fc0);
    expect(Number.isNaN(fromBFloat16(0x7fc0))).toBe(true);
    expect(Number.isNaN(fromBFloat16(0x7f81))).toBe(true);
  });

  it('float32 bits: rounding on the bits, NaN payload and sign kept', () => {
    expect(float32BitsToBFloat16(0x3f808000)).toBe(0x3f80); // tie, even
    expect(float32BitsToBFloat16(0x3f818000)).toBe(0x3f82); // tie, odd -> up
    expect(float32BitsToBFloat16(0x3f808001)).toBe(0x3f81);
    expect(float32BitsToBFloat16(0x7f7fffff)).toBe(0x7f80); // float32 max overflows
    expect(float32BitsToBFloat16(0xff800001)).toBe(0xffc0); // signaling NaN: sign kept, made quiet
    expect(float32BitsToBFloat16(0x7fa50000)).toBe(0x7fe5); // payload top bits kept
  });
});

describe('float16 exhaustive', () => {
  it('every non-NaN pattern round-trips through float64 and float32, and decodes as the reference', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f32 = decodeFloat16(all);
    const back = encodeFloat16(f32);
    for (let b = 0; b < 65536; b++) {
      const v = fromFloat16(b);
      if (isNaN16(b)) {
        expect(Number.isNaN(v)).toBe(true);
        expect(isNaN16(toFloat16(v))).toBe(true);
        continue;
      }
      const ref = (b & 0x8000 ? -1 : 1) * ((b & 0x7fff) === 0x7c00 ? Infinity : refDecode(F16, b & 0x7fff));
      if (!Object.is(v, ref)) expect([b, v]).toEqual([b, ref]);
      if (toFloat16(v) !== b) expect([b, toFloat16(v)]).toEqual([b, b]);
      if (back[b] !== b) expect([b, back[b]]).toEqual([b, b]);
      if (toFloat16(Math.fround(v)) !== b) throw new Error(`float32 path failed at ${b}`);
    }
  });

  it('NaN payloads from float32 bits: sign kept, quiet bit set, top payload bits kept', () => {
    expect(float32BitsToFloat16(0x7fc00000)).toBe(0x7e00);
    expect(float32BitsToFloat16(0xff800001)).toBe(0xfe00); // signaling with low payload: sign kept, quiet
    expect(float32BitsToFloat16(0x7f802000)).toBe(0x7e01);
    const f = new Float32Array(new Uint32Array([0xffc02000, 0x3f800000]).buffer);
    expect([...encodeFloat16(f)]).toEqual([0xfe01, 0x3c00]);
  });

  it('bfloat16: every non-NaN pattern round-trips and decodes as the reference', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f32 = decodeBFloat16(all);
    const f64 = decodeBFloat16(all, new Float64Array(65536));
    const back = encodeBFloat16(f32);
    for (let b = 0; b < 65536; b++) {
      if (isNaNB16(b)) {
        expect(Number.isNaN(f64[b])).toBe(true);
        expect(back[b]).toBe(b | 0x40); // made quiet, payload kept through the Float32Array bits
        continue;
      }
      const ref = (b & 0x8000 ? -1 : 1) * ((b & 0x7fff) === 0x7f80 ? Infinity : refDecode(BF16, b & 0x7fff));
      if (!Object.is(f64[b], ref) || !Object.is(f32[b], ref) || !Object.is(fromBFloat16(b), ref)) {
        expect([b, f64[b], f32[b], fromBFloat16(b)]).toEqual([b, ref, ref, ref]);
      }
      if (back[b] !== b || toBFloat16(ref) !== b) expect([b, back[b], toBFloat16(ref)]).toEqual([b, b, b]);
    }
  });
});

describe('conversion equals a brute-force nearest search', () => {
  // Doubles in the interesting ranges, plus exact midpoints between neighbours nudged by a few ulps.
  const midpoint16 = fc
    .tuple(fc.integer({ min: 0, max: 0x7bff }), fc.integer({ min: -3, max: 3 }), fc.boolean())
    .map(([b, nudge, neg]) => {
      const mid = (refDecode(F16, b) + CAND16[b + 1]!) / 2;
      const x = mid + nudge * Math.max(Math.abs(mid) * 2 ** -52, Number.MIN_VALUE);
      return neg ? -x : x;
    });
  const midpointB16 = fc
    .tuple(fc.integer({ min: 0, max: 0x7f7f }), fc.integer({ min: -3, max: 3 }), fc.boolean())
    .map(([b, nudge, neg]) => {
      const mid = (refDecode(BF16, b) + CANDB16[b + 1]!) / 2;
      const x = mid + nudge * Math.max(Math.abs(mid) * 2 ** -52, Number.MIN_VALUE);
      return neg ? -x : x;
    });
  const f16Doubles = fc.oneof(
    fc.double({ noNaN: true }),
    fc.double({ min: -70000, max: 70000, noNaN: true }),
    fc.double({ min: -(2 ** -13), max: 2 ** -13, noNaN: true }),
    midpoint16,
  );
  const bf16Doubles = fc.oneof(
    fc.double({ noNaN: true }),
    fc.double({ min: -4e38, max: 4e38, noNaN: true }),
    fc.double({ min: -(2 ** -120), max: 2 ** -120, noNaN: true }),
    midpointB16,
  );

  it('float16 from float64', () => {
    fc.assert(
      fc.property(f16Doubles, (x) => toFloat16(x) === refEncode(F16, CAND16, x)),
      { numRuns: 20000 },
    );
  });

  it('float16 from float32 bits (scalar and bulk) agrees with the search on the float32 value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (u) => {
        const x = f32FromBits(u);
        if (Number.isNaN(x)) return isNaN16(float32BitsToFloat16(u));
        const want = refEncode(F16, CAND16, x);
        const bulk = encodeFloat16(new Float32Array([x]))[0];
        return float32BitsToFloat16(u) === want && bulk === want && toFloat16(x) === want;
      }),
      { numRuns: 20000 },
    );
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: -70000, max: 70000 }), (x) => toFloat16(x) === refEncode(F16, CAND16, x)),
      { numRuns: 10000 },
    );
  });

  it('bfloat16 from float64', () => {
    fc.assert(
      fc.property(bf16Doubles, (x) => toBFloat16(x) === refEncode(BF16, CANDB16, x)),
      { numRuns: 20000 },
    );
  });

  it('bfloat16 from float32 bits agrees with the search', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (u) => {
        const x = f32FromBits(u);
        if (Number.isNaN(x)) return isNaNB16(float32BitsToBFloat16(u));
        const want = refEncode(BF16, CANDB16, x);
        return float32BitsToBFloat16(u) === want && toBFloat16(x) === want && encodeBFloat16([x])[0] === want;
      }),
      { numRuns: 20000 },
    );
  });

  it('roundFloat16/roundBFloat16 give the decoded nearest value', () => {
    fc.assert(
      fc.property(f16Doubles, (x) => Object.is(roundFloat16(x), fromFloat16(refEncode(F16, CAND16, x)))),
    );
    fc.assert(
      fc.property(bf16Doubles, (x) => Object.is(roundBFloat16(x), fromBFloat16(refEncode(BF16, CANDB16, x)))),
    );
  });
});

describe('bulk helpers', () => {
  it('check output lengths and accept plain arrays and Float64Array', () => {
    expect([...encodeFloat16([1, -0, 65520])]).toEqual([0x3c00, 0x8000, 0x7c00]);
    expect([...encodeFloat16(new Float64Array([1 + 2 ** -11 + 2 ** -40]))]).toEqual([0x3c01]);
    expect([...decodeFloat16(new Uint16Array([0x3c00, 0x0001]), new Float64Array(2))]).toEqual([1, 2 ** -24]);
    expect(() => encodeFloat16([1, 2], new Uint16Array(1))).toThrow(/length/);
    expect(() => decodeBFloat16(new Uint16Array(2), new Float32Array(3))).toThrow(/length/);
  });

  it('work on subarray views', () => {
    const buf = new Float32Array([9, 1, 2, 9]);
    expect([...encodeFloat16(buf.subarray(1, 3))]).toEqual([0x3c00, 0x4000]);
    const out = new Float32Array(4);
    decodeBFloat16(new Uint16Array([0x3f80, 0x4000]), out.subarray(1, 3));
    expect([...out]).toEqual([0, 1, 2, 0]);
  });
});

describe('encodeValue / decodeValue / cast', () => {
  it('integer casts truncate toward zero and saturate; NaN -> 0', () => {
    expect(encodeValue('int8', 3.9)).toBe(3);
    expect(encodeValue('int8', -3.9)).toBe(-3);
    expect(encodeValue('int8', 200)).toBe(127);
    expect(encodeValue('int8', -200)).toBe(-128);
    expect(encodeValue('uint8', -1)).toBe(0);
    expect(encodeValue('uint8', 255.9)).toBe(255);
    expect(encodeValue('uint8', 256)).toBe(255);
    expect(encodeValue('int32', 1e20)).toBe(2147483647);
    expect(encodeValue('int32', -Infinity)).toBe(-2147483648);
    expect(encodeValue('int32', NaN)).toBe(0);
    expect(Object.is(encodeValue('int32', -0.5), 0)).toBe(true);
  });

  it('bool is value !== 0', () => {
    expect(encodeValue('bool', 0)).toBe(0);
    expect(encodeValue('bool', -0)).toBe(0);
    expect(encodeValue('bool', 0.001)).toBe(1);
    expect(encodeValue('bool', NaN)).toBe(1);
    expect(decodeValue('bool', 7)).toBe(1);
  });

  it('float casts round to nearest even', () => {
    expect(encodeValue('float32', 1 + 2 ** -30)).toBe(1);
    expect(encodeValue('float16', 65520)).toBe(0x7c00);
    expect(encodeValue('bfloat16', 1)).toBe(0x3f80);
    expect(decodeValue('float16', 0x3c00)).toBe(1);
    expect(decodeValue('bfloat16', 0xbf80)).toBe(-1);
    expect(() => encodeValue('complex' as never, 1)).toThrow(DTypeError);
  });

  it('cast of a strided tensor gives a contiguous copy with converted values', () => {
    const t = tensor(new Float32Array([1.5, -2.5, 300, -0.25, 70000, NaN]), [2, 3]);
    const tt = transpose(t); // [3, 2]
    const h = cast(tt, 'float16');
    expect(h.dtype).toBe('float16');
    expect(h.stride).toEqual([2, 1]);
    expect(h.offset).toBe(0);
    expect([...h.data.slice(0, 5)]).toEqual([toFloat16(1.5), toFloat16(-0.25), toFloat16(-2.5), 0x7c00, toFloat16(300)]);
    expect(isNaN16(h.data[5]!)).toBe(true);
    const i8 = cast(tt, 'int8');
    expect(toArray(i8)).toEqual([1, 0, -2, 127, 127, 0]);
    const u8 = cast(tt, 'uint8');
    expect(toArray(u8)).toEqual([1, 0, 0, 255, 255, 0]);
    const b = cast(tt, 'bool');
    expect(toArray(b)).toEqual([1, 1, 1, 1, 1, 1]);
    const back = cast(h, 'float64');
    expect(toArray(back).slice(0, 5)).toEqual([1.5, -0.25, -2.5, Infinity, 300]);
    const bf = cast(h, 'bfloat16');
    expect(bf.data[0]).toBe(toBFloat16(1.5));
  });

  it('cast always copies, also for the same dtype, and handles reversed slices and empty shapes', () => {
    const t = tensor(new Int32Array([1, 2, 3, 4]), [4]);
    const r = cast(slice(t, { step: -1 }), 'int32');
    expect(toArray(r)).toEqual([4, 3, 2, 1]);
    const same = cast(t, 'int32');
    expect(same.data).not.toBe(t.data);
    expect(toArray(same)).toEqual([1, 2, 3, 4]);
    expect(cast(zeros([0, 3]), 'float16').data.length).toBe(0);
    expect(toArray(cast(tensor(new Uint8Array([0, 1]), [2], { dtype: 'bool' }), 'float32'))).toEqual([0, 1]);
  });

  it('cast matches encodeValue(decodeValue) elementwise for random data in every dtype pair', () => {
    const dtypes = ['float32', 'float64', 'int32', 'int8', 'uint8', 'bool', 'float16', 'bfloat16'] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...dtypes),
        fc.constantFrom(...dtypes),
        fc.array(fc.double({ min: -1e5, max: 1e5 }), { maxLength: 20 }),
        (from, to, xs) => {
          const src = zeros([xs.length], from);
          xs.forEach((x, i) => (src.data[i] = encodeValue(from, x)));
          const out = cast(src, to);
          for (let i = 0; i < xs.length; i++) {
            const want = encodeValue(to, decodeValue(from, src.data[i]!));
            if (!Object.is(out.data[i], want) && !(Number.isNaN(out.data[i]) && Number.isNaN(want))) return false;
          }
          return true;
        },
      ),
    );
  });
});
