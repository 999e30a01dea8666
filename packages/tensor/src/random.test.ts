import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Random, randomTensor, type RandomState } from './random.js';
import { ArgumentError, DTypeError } from './errors.js';
import { fromFloat16 } from './float16.js';

// ---- Independent BigInt reimplementation of SplitMix64, FNV-1a 64 and xoshiro128**. ----

const M64 = (1n << 64n) - 1n;
const M32 = 0xffffffffn;

function refMix(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

function refSplitMix(seed: bigint): () => bigint {
  let s = BigInt.asUintN(64, seed);
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & M64;
    return refMix(s);
  };
}

function refFnv(label: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(label)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M64;
  return h;
}

const rotl32 = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & M32;

class RefXoshiro {
  s: bigint[];
  key: bigint;
  constructor(key: bigint) {
    this.key = BigInt.asUintN(64, key);
    const sm = refSplitMix(this.key);
    const a = sm();
    const b = sm();
    this.s = [a & M32, a >> 32n, b & M32, b >> 32n];
  }
  next(): number {
    const s = this.s;
    const result = (rotl32((s[1]! * 5n) & M32, 7n) * 9n) & M32;
    const t = (s[1]! << 9n) & M32;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl32(s[3]!, 11n);
    return Number(result);
  }
  fork(label: string): RefXoshiro {
    return new RefXoshiro(refMix(this.key ^ refFnv(label)));
  }
}

function firstOutputs(r: Random, n: number): number[] {
  return Array.from({ length: n }, () => r.nextUint32());
}

/** Chi-square statistic of observed counts against equal expected counts. */
function chiSquare(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const e = total / counts.length;
  return counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
}

describe('reference anchors', () => {
  it('the BigInt reference reproduces published SplitMix64 and FNV-1a values', () => {
    expect(refSplitMix(0n)()).toBe(0xe220a8397b1dcdafn);
    expect(refFnv('')).toBe(0xcbf29ce484222325n);
    expect(refFnv('a')).toBe(0xaf63dc4c8601ec8cn);
    expect(refFnv('foobar')).toBe(0x85944171f73967e8n);
  });

  it('xoshiro128** from state [1, 2, 3, 4] gives the hand-computed first outputs', () => {
    const r = Random.fromState({ algorithm: 'xoshiro128**', key: [0, 0], s: [1, 2, 3, 4], spare: null });
    // out = rotl(s1 * 5, 7) * 9: 10 << 7 = 1280, * 9 = 11520; then s1 becomes 0; then 1029 * 5 << 7 * 9.
    expect(firstOutputs(r, 3)).toEqual([11520, 0, 5927040]);
  });
});

describe('Random streams', () => {
  const seeds: Array<number | bigint> = [0, 1, 42, -1, -5, 2 ** 32, 2 ** 53 - 1, -(2 ** 53 - 1), 123456789012345678901234567890n, -7n];

  it.each(seeds.map((s) => [s]))('seed %s matches the BigInt reference for 2000 outputs', (seed) => {
    const ref = new RefXoshiro(BigInt(seed));
    const want = Array.from({ length: 2000 }, () => ref.next());
    expect(firstOutputs(new Random(seed), 2000)).toEqual(want);
  });

  it('number and bigint seeds agree modulo 2^64', () => {
    expect(firstOutputs(new Random(-5), 8)).toEqual(firstOutputs(new Random(-5n), 8));
    expect(firstOutputs(new Random(-5), 8)).toEqual(firstOutputs(new Random((1n << 64n) - 5n), 8));
    expect(firstOutputs(new Random(7), 8)).toEqual(firstOutputs(new Random(7n + (1n << 64n)), 8));
    expect(firstOutputs(new Random(1), 8)).not.toEqual(firstOutputs(new Random(2), 8));
  });

  it('rejects seeds that are not safe integers', () => {
    expect(() => new Random(1.5)).toThrow(ArgumentError);
    expect(() => new Random(2 ** 53)).toThrow(ArgumentError);
    expect(() => new Random(NaN)).toThrow(ArgumentError);
  });

  it('next() is built from two outputs with 53 bits and lies in [0, 1)', () => {
    const ref = new RefXoshiro(99n);
    const r = new Random(99);
    for (let i = 0; i < 1000; i++) {
      const a = ref.next() >>> 5;
      const b = ref.next() >>> 6;
      const want = (a * 2 ** 26 + b) / 2 ** 53;
      const got = r.next();
      if (got !== want) expect(got).toBe(want);
      expect(got >= 0 && got < 1).toBe(true);
    }
  });

  it('fork matches the reference, ignores draws made before it, and separates labels', () => {
    const r = new Random(2024);
    const ref = new RefXoshiro(2024n);
    const want = Array.from({ length: 100 }, ((f) => () => f.next())(ref.fork('dropout')));
    expect(firstOutputs(r.fork('dropout'), 100)).toEqual(want);
    r.nextUint32();
    r.normal();
    expect(firstOutputs(r.fork('dropout'), 100)).toEqual(want);
    const g = ref.fork('layer').fork('ü-7');
    expect(firstOutputs(r.fork('layer').fork('ü-7'), 50)).toEqual(Array.from({ length: 50 }, () => g.next()));
    expect(firstOutputs(r.fork(3), 10)).toEqual(firstOutputs(r.fork('3'), 10));
    expect(firstOutputs(r.fork('a'), 10)).not.toEqual(firstOutputs(r.fork('b'), 10));
    expect(firstOutputs(r.fork('a'), 10)).not.toEqual(firstOutputs(new Random(2024), 10));
    expect(() => r.fork({} as never)).toThrow(ArgumentError);
  });

  it('the same seed gives the same sequence of every kind of draw', () => {
    const run = (r: Random) => [r.next(), r.normal(), r.int(-3, 1000), r.normal(2, 3), [...r.sample(3, 50)], r.uniform(-1, 1)];
    expect(run(new Random(5))).toEqual(run(new Random(5)));
  });
});

describe('state()', () => {
  it('round-trips through JSON and continues exactly, with a pending Box–Muller spare', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 50 }), fc.boolean(), (seed, skip, oddNormals) => {
        const r = new Random(seed);
        for (let i = 0; i < skip; i++) r.nextUint32();
        r.normal();
        if (oddNormals) r.normal();
        const saved = JSON.parse(JSON.stringify(r.state())) as RandomState;
        const back = Random.fromState(saved);
        const a = [r.normal(), r.next(), r.int(0, 10), ...firstOutputs(r.fork('x'), 3)];
        const b = [back.normal(), back.next(), back.int(0, 10), ...firstOutputs(back.fork('x'), 3)];
        return JSON.stringify(a) === JSON.stringify(b);
      }),
      { numRuns: 200 },
    );
  });

  it('records the spare: it is non-null exactly after an odd number of normals', () => {
    const r = new Random(1);
    expect(r.state().spare).toBeNull();
    r.normal();
    expect(typeof r.state().spare).toBe('number');
    r.normal();
    expect(r.state().spare).toBeNull();
  });

  it('fromState rejects malformed states', () => {
    const good = new Random(3).state();
    const bad: unknown[] = [
      null,
      { ...good, algorithm: 'pcg32' },
      { ...good, key: [1] },
      { ...good, s: [0, 0, 0, 0] },
      { ...good, s: [1, 2, 3, -1] },
      { ...good, s: [1, 2, 3, 2 ** 32] },
      { ...good, spare: NaN },
      { ...good, spare: 'x' },
    ];
    for (const st of bad) expect(() => Random.fromState(st as RandomState)).toThrow(ArgumentError);
  });
});

// Builds a state whose next outputs are chosen values: xoshiro128**'s output depends only on s1, so
// invert out = rotl(s1 * 5, 7) * 9, and pick s0 ^ s2 so that the updated s1 gives the second value.
function stateForOutputs(first: number, second: number): RandomState {
  const inv = (a: bigint) => {
    let x = 1n; // Newton iteration for the inverse of an odd number modulo 2^32
    for (let i = 0; i < 6; i++) x = (x * (2n - a * x)) & M32;
    return x;
  };
  const preimage = (out: number) => {
    const y = (BigInt(out) * inv(9n)) & M32;
    const x = ((y >> 7n) | (y << 25n)) & M32;
    return Number((x * inv(5n)) & M32);
  };
  const s1 = preimage(first);
  const s1Next = preimage(second);
  // next s1 = s1 ^ (s2 ^ s0): take s0 = 1, s2 = 1 ^ s1 ^ s1Next
  return { algorithm: 'xoshiro128**', key: [0, 0], s: [1, s1, (1 ^ s1 ^ s1Next) >>> 0, 0], spare: null };
}

describe('uniform draws', () => {
  it('the crafted state yields the chosen outputs', () => {
    const r = Random.fromState(stateForOutputs(0xffffffff, 0xfffffffe));
    expect(firstOutputs(r, 2)).toEqual([0xffffffff, 0xfffffffe]);
  });

  it('next() peaks at 1 - 2^-53 and uniform(1, 2) redraws instead of rounding up to 2', () => {
    expect(Random.fromState(stateForOutputs(0xffffffff, 0xffffffff)).next()).toBe(1 - 2 ** -53);
    const r = Random.fromState(stateForOutputs(0xffffffff, 0xffffffff));
    const v = r.uniform(1, 2);
    expect(v).toBeGreaterThanOrEqual(1);
    expect(v).toBeLessThan(2);
  });

  it('fillUniform on a Float32Array uses a 2^-24 grid, so [0, 1) never stores 1', () => {
    const a = Random.fromState(stateForOutputs(0xffffffff, 0)).fillUniform(new Float32Array(1));
    expect(a[0]).toBe(1 - 2 ** -24);
    const big = new Random(8).fillUniform(new Float32Array(10000));
    expect(big.every((x) => Number.isInteger(x * 2 ** 24) && x >= 0 && x < 1)).toBe(true);
  });

  it('uniform values are roughly uniform (chi-square over 20 bins) for every array kind', () => {
    for (const arr of [new Float32Array(100000), new Float64Array(100000), new Array<number>(100000).fill(0)]) {
      new Random(11).fillUniform(arr, -2, 3);
      const counts = new Array(20).fill(0);
      let outside = 0;
      for (const x of arr) {
        if (!(x >= -2 && x < 3)) outside++;
        else counts[Math.floor(((x + 2) / 5) * 20)]++;
      }
      expect(outside).toBe(0);
      expect(chiSquare(counts)).toBeLessThan(50); // df = 19; 50 is far beyond the 99.99% quantile (~43)
    }
  });

  it('fillUniform on a Float64Array equals successive uniform() calls', () => {
    const a = new Random(4).fillUniform(new Float64Array(20), -1, 1);
    const r = new Random(4);
    expect([...a]).toEqual(Array.from({ length: 20 }, () => r.uniform(-1, 1)));
  });

  it('rejects bad ranges', () => {
    const r = new Random(0);
    expect(() => r.uniform(1, 1)).toThrow(ArgumentError);
    expect(() => r.fillUniform(new Float32Array(1), 0, Infinity)).toThrow(ArgumentError);
    expect(() => r.uniform(-Number.MAX_VALUE, Number.MAX_VALUE)).toThrow(ArgumentError);
    expect(() => r.bernoulli(1.5)).toThrow(ArgumentError);
  });

  it('bernoulli frequency is close to p', () => {
    const r = new Random(21);
    let ones = 0;
    for (let i = 0; i < 100000; i++) ones += r.bernoulli(0.3);
    expect(Math.abs(ones / 100000 - 0.3)).toBeLessThan(0.01); // ~7 standard deviations
  });
});

describe('int', () => {
  it('follows the documented rejection rule (checked against the reference stream)', () => {
    for (const n of [1, 3, 10, 1000, 2 ** 31 + 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 3, 2 ** 53 - 1]) {
      const ref = new RefXoshiro(77n);
      const r = new Random(77);
      for (let i = 0; i < 200; i++) {
        let want: number;
        if (n <= 2 ** 32) {
          const limit = 2 ** 32 - (2 ** 32 % n);
          let x: number;
          do x = ref.next();
          while (x >= limit);
          want = x % n;
        } else {
          const limit = 2n ** 53n - (2n ** 53n % BigInt(n));
          let x: bigint;
          do x = (BigInt(ref.next() >>> 5) << 26n) | BigInt(ref.next() >>> 6);
          while (x >= limit);
          want = Number(x % BigInt(n));
        }
        expect(r.int(-5, -5 + n)).toBe(want - 5);
      }
    }
  });

  it('is uniform (chi-square) and stays in [lo, hi)', () => {
    const r = new Random(3);
    const counts = new Array(10).fill(0);
    let outside = 0;
    for (let i = 0; i < 100000; i++) {
      const v = r.int(5, 15);
      if (v >= 5 && v < 15) counts[v - 5]++;
      else outside++;
    }
    expect(outside).toBe(0);
    expect(chiSquare(counts)).toBeLessThan(40); // df = 9
  });

  it('rejects bad arguments', () => {
    const r = new Random(0);
    expect(() => r.int(3, 3)).toThrow(ArgumentError);
    expect(() => r.int(0, 1.5)).toThrow(ArgumentError);
    expect(() => r.int(-(2 ** 52), 2 ** 52 + 1)).toThrow(ArgumentError);
  });
});

describe('shuffle, sample, permutation', () => {
  it('shuffle is Fisher–Yates from the end and all 6 orders of 3 are equally likely', () => {
    const r = new Random(9);
    const counts = new Map<string, number>();
    for (let i = 0; i < 60000; i++) {
      const key = r.shuffle(['a', 'b', 'c']).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    expect(chiSquare([...counts.values()])).toBeLessThan(30); // df = 5
    // same draws as the textbook loop
    const a = new Random(10).shuffle(new Float64Array([0, 1, 2, 3, 4, 5, 6]));
    const q = new Random(10);
    const b = [0, 1, 2, 3, 4, 5, 6];
    for (let i = b.length - 1; i > 0; i--) {
      const j = q.int(0, i + 1);
      [b[i], b[j]] = [b[j]!, b[i]!];
    }
    expect([...a]).toEqual(b);
  });

  it('sample gives k distinct values in range, the same as a forward Fisher–Yates on a full array', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer(), (n, frac, seed) => {
        const k = Math.floor(frac * n);
        const got = new Random(seed).sample(k, n);
        const q = new Random(seed);
        const a = Array.from({ length: n }, (_, i) => i);
        for (let i = 0; i < k; i++) {
          const j = q.int(i, n);
          [a[i], a[j]] = [a[j]!, a[i]!];
        }
        return got.length === k && new Set(got).size === k && got.every((v, i) => v === a[i]);
      }),
    );
  });

  it('sample from a huge n uses little memory and stays distinct', () => {
    const s = new Random(1).sample(1000, 2 ** 31 - 1);
    expect(new Set(s).size).toBe(1000);
    expect(s.every((v) => v >= 0 && v < 2 ** 31 - 1)).toBe(true);
  });

  it('ordered samples of 2 from 5 are uniform over the 20 pairs', () => {
    const r = new Random(12);
    const counts = new Map<string, number>();
    for (let i = 0; i < 40000; i++) {
      const key = r.sample(2, 5).join(',');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(20);
    expect(chiSquare([...counts.values()])).toBeLessThan(55); // df = 19
  });

  it('permutation is a permutation and equals sample(n, n)', () => {
    const p = new Random(6).permutation(1000);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect([...p]).toEqual([...new Random(6).sample(1000, 1000)]);
    expect(new Random(0).permutation(0).length).toBe(0);
    expect(() => new Random(0).sample(4, 3)).toThrow(ArgumentError);
    expect(() => new Random(0).permutation(-1)).toThrow(ArgumentError);
  });
});

describe('normal', () => {
  it('has mean and std within tolerance and fillNormal equals successive normal() calls', () => {
    const n = 200000;
    const a = new Random(13).fillNormal(new Float64Array(n), 1.5, 2);
    const mean = a.reduce((s, x) => s + x, 0) / n;
    const sd = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
    expect(Math.abs(mean - 1.5)).toBeLessThan(0.03); // 5 standard errors (2 / sqrt(n) = 0.0045)
    expect(Math.abs(sd - 2)).toBeLessThan(0.02);
    let within1 = 0;
    for (const x of a) if (Math.abs(x - 1.5) < 2) within1++;
    expect(Math.abs(within1 / n - 0.6827)).toBeLessThan(0.01);
    const r = new Random(13);
    const seq = Array.from({ length: 9 }, () => r.normal(1.5, 2));
    expect([...a.slice(0, 9)]).toEqual(seq);
  });

  it('is Box–Muller on (1 - next(), next())', () => {
    const q = new Random(14);
    const u1 = 1 - q.next();
    const u2 = q.next();
    const r0 = Math.sqrt(-2 * Math.log(u1));
    const r = new Random(14);
    expect(r.normal()).toBe(r0 * Math.cos(2 * Math.PI * u2));
    expect(r.normal()).toBe(r0 * Math.sin(2 * Math.PI * u2));
  });

  it('rejects bad parameters', () => {
    expect(() => new Random(0).normal(0, -1)).toThrow(ArgumentError);
    expect(() => new Random(0).fillNormal(new Float32Array(2), NaN, 1)).toThrow(ArgumentError);
  });
});

describe('randomTensor', () => {
  it('fills float tensors deterministically and contiguously', () => {
    const t = randomTensor([3, 4], new Random(1), { dist: 'normal', std: 0.5 });
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([3, 4]);
    expect(t.stride).toEqual([4, 1]);
    expect([...t.data]).toEqual([...new Random(1).fillNormal(new Float32Array(12), 0, 0.5)]);
    const u = randomTensor([5], new Random(2), { dtype: 'float64', lo: 2, hi: 3 });
    expect([...u.data]).toEqual([...new Random(2).fillUniform(new Float64Array(5), 2, 3)]);
  });

  it('16-bit tensors hold the rounded float64 draws', () => {
    const h = randomTensor([100], new Random(3), { dtype: 'float16', lo: -1, hi: 1 });
    const ref = new Random(3).fillUniform(new Float64Array(100), -1, 1);
    for (let i = 0; i < 100; i++) expect(Math.abs(fromFloat16(h.data[i]!) - ref[i]!)).toBeLessThanOrEqual(2 ** -12);
    const b = randomTensor([10], new Random(3), { dtype: 'bfloat16', dist: 'normal' });
    expect(b.data).toBeInstanceOf(Uint16Array);
  });

  it('integer dtypes draw ints in [lo, hi); bernoulli works for every dtype', () => {
    const t = randomTensor([1000], new Random(4), { dtype: 'uint8', lo: 250, hi: 256 });
    expect([...t.data].every((v) => v >= 250 && v < 256)).toBe(true);
    expect(new Set(t.data).size).toBe(6);
    const m = randomTensor([10000], new Random(5), { dtype: 'bool', dist: 'bernoulli', p: 0.25 });
    const ones = m.data.reduce((s, v) => s + v, 0);
    expect(Math.abs(ones / 10000 - 0.25)).toBeLessThan(0.03);
    const f = randomTensor([4], new Random(5), { dtype: 'float16', dist: 'bernoulli', p: 1 });
    expect([...f.data]).toEqual([0x3c00, 0x3c00, 0x3c00, 0x3c00]);
    expect(randomTensor([0, 5], new Random(0)).data.length).toBe(0);
  });

  it('refuses combinations that make no sense', () => {
    const r = new Random(0);
    expect(() => randomTensor([2], r, { dtype: 'int32', dist: 'normal', hi: 3 })).toThrow(DTypeError);
    expect(() => randomTensor([2], r, { dtype: 'int8' })).toThrow(ArgumentError);
    expect(() => randomTensor([2], r, { dtype: 'int8', lo: 0, hi: 200 })).toThrow(ArgumentError);
    expect(() => randomTensor([2], r, { dtype: 'bool' })).toThrow(DTypeError);
    expect(() => randomTensor([2], r, { dist: 'cauchy' as never })).toThrow(ArgumentError);
  });
});
