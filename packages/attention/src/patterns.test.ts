import { ArgumentError, ShapeError } from '@sparse/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockMaskFromElements, elementAllowed, maskDensity, toDense } from './mask.js';
import {
  and,
  blockDiagonal,
  causal,
  dilated,
  documents,
  full,
  globalTokens,
  multiDiagonal,
  not,
  or,
  patternToDense,
  prefixSharing,
  sinks,
  slidingWindow,
  toBlockMask,
  verticalStripe,
  type Pattern,
} from './patterns.js';

// Each pattern paired with an independent definition of its element mask, written from the definition.
type Ref = (i: number, j: number) => boolean;
interface Case {
  name: string;
  pattern: Pattern;
  ref: Ref;
  length?: number;
}

const seg = (lengths: number[]) => lengths.flatMap((n, k) => Array.from({ length: n }, () => k));

const arbCase: fc.Arbitrary<Case> = fc.oneof(
  fc.constant<Case>({ name: 'causal', pattern: causal(), ref: (i, j) => j <= i }),
  fc.constant<Case>({ name: 'full', pattern: full(), ref: () => true }),
  fc.integer({ min: 1, max: 12 }).map<Case>((w) => ({ name: `window ${w}`, pattern: slidingWindow(w), ref: (i, j) => j <= i && i - j < w })),
  fc.integer({ min: 1, max: 12 }).map<Case>((w) => ({ name: `bi-window ${w}`, pattern: slidingWindow(w, { causal: false }), ref: (i, j) => Math.abs(i - j) < w })),
  fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.boolean()).map<Case>(([w, d, c]) => ({
    name: `dilated ${w} ${d} ${c}`,
    pattern: dilated(w, d, { causal: c }),
    ref: (i, j) => {
      for (let k = c ? 0 : -(w - 1); k <= w - 1; k++) if (i - j === k * d) return true;
      return false;
    },
  })),
  fc.integer({ min: 0, max: 6 }).map<Case>((n) => ({ name: `sinks ${n}`, pattern: sinks(n), ref: (_i, j) => j < n })),
  fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 6 }).map<Case>((g) => ({
    name: `global ${g}`,
    pattern: globalTokens(g),
    ref: (i, j) => g.includes(i) || g.includes(j),
  })),
  fc.integer({ min: 1, max: 9 }).map<Case>((s) => ({ name: `block-diagonal ${s}`, pattern: blockDiagonal(s), ref: (i, j) => Math.floor(i / s) === Math.floor(j / s) })),
  fc.tuple(fc.array(fc.integer({ min: -10, max: 10 }), { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 4 })).map<Case>(([o, w]) => ({
    name: `multi-diagonal ${o} ${w}`,
    pattern: multiDiagonal(o, w),
    ref: (i, j) => o.some((x) => i - j >= x && i - j < x + w),
  })),
  fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 6 }).map<Case>((cols) => ({
    name: `stripes ${cols}`,
    pattern: verticalStripe(cols),
    ref: (_i, j) => cols.includes(j),
  })),
  fc.integer({ min: 1, max: 7 }).chain((every) =>
    fc.integer({ min: 0, max: every - 1 }).map<Case>((offset) => ({
      name: `stripes every ${every}+${offset}`,
      pattern: verticalStripe({ every, offset }),
      ref: (_i, j) => j >= offset && (j - offset) % every === 0,
    })),
  ),
);

// Patterns with a fixed length: documents (contiguous or with recurring ids) and prefix sharing.
const arbFixed: fc.Arbitrary<Case> = fc.oneof(
  fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }).map<Case>((lens) => {
    const ids = seg(lens);
    return { name: `documents ${lens}`, pattern: documents(ids), ref: (i, j) => ids[i] === ids[j], length: ids.length };
  }),
  fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 30 }).map<Case>((ids) => ({
    name: `documents ids ${ids}`,
    pattern: documents(ids),
    ref: (i, j) => ids[i] === ids[j],
    length: ids.length,
  })),
  fc.tuple(fc.integer({ min: 1, max: 9 }), fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 4 })).map<Case>(([prompt, responses]) => {
    const ps = prefixSharing({ prompt, responses });
    const owner = (x: number) => {
      if (x < prompt) return -1;
      let at = prompt;
      for (let r = 0; r < responses.length; r++) {
        at += responses[r]!;
        if (x < at) return r;
      }
      return -2;
    };
    return {
      name: `prefix ${prompt} ${responses}`,
      pattern: ps.pattern,
      ref: (i, j) => j <= i && (owner(j) === -1 || owner(j) === owner(i)),
      length: ps.length,
    };
  }),
);

// Compositions of up to two levels, with their reference built from the parts' references.
const arbComposite: fc.Arbitrary<Case> = fc.oneof(
  arbCase,
  fc.tuple(fc.constantFrom('and', 'or'), fc.array(arbCase, { minLength: 1, maxLength: 3 })).map<Case>(([op, parts]) => ({
    name: `${op}(${parts.map((p) => p.name).join(', ')})`,
    pattern: op === 'and' ? and(...parts.map((p) => p.pattern)) : or(...parts.map((p) => p.pattern)),
    ref: op === 'and' ? (i, j) => parts.every((p) => p.ref(i, j)) : (i, j) => parts.some((p) => p.ref(i, j)),
  })),
  arbCase.map<Case>((c) => ({ name: `not(${c.name})`, pattern: not(c.pattern), ref: (i, j) => !c.ref(i, j) })),
);
const arbNested: fc.Arbitrary<Case> = fc.tuple(fc.constantFrom('and', 'or'), arbComposite, arbComposite).map<Case>(([op, a, b]) => ({
  name: `${op}(${a.name}, ${b.name})`,
  pattern: op === 'and' ? and(a.pattern, b.pattern) : or(a.pattern, b.pattern),
  ref: op === 'and' ? (i, j) => a.ref(i, j) && b.ref(i, j) : (i, j) => a.ref(i, j) || b.ref(i, j),
}));

function bruteDense(ref: Ref, seq: number): Uint8Array {
  const out = new Uint8Array(seq * seq);
  for (let i = 0; i < seq; i++) for (let j = 0; j < seq; j++) out[i * seq + j] = ref(i, j) ? 1 : 0;
  return out;
}

/** Every tile code equals the classification of the brute-force element mask over that tile. */
function expectTilesMatch(c: Case, seq: number, blockSize: number): void {
  const mask = toBlockMask(c.pattern, { seq, blockSize });
  const ref = blockMaskFromElements((_h, i, j) => c.ref(i, j), { seq, blockSize });
  expect(Array.from(mask.tiles), c.name).toEqual(Array.from(ref.tiles));
  expect(Array.from(toDense(mask)), c.name).toEqual(Array.from(bruteDense(c.ref, seq)));
}

describe('patterns: element masks equal their definitions', () => {
  it('every basic and composed pattern', () => {
    fc.assert(
      fc.property(arbNested, fc.integer({ min: 1, max: 40 }), (c, seq) => {
        expect(Array.from(patternToDense(c.pattern, seq)), c.name).toEqual(Array.from(bruteDense(c.ref, seq)));
      }),
      { numRuns: 300 },
    );
  });
  it('fixed-length patterns (documents, prefix sharing)', () => {
    fc.assert(
      fc.property(arbFixed, (c) => {
        expect(Array.from(patternToDense(c.pattern, c.length!))).toEqual(Array.from(bruteDense(c.ref, c.length!)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('patterns: tile classification matches the element mask', () => {
  it('basic and composed patterns, any block size, seq not a multiple of it', () => {
    fc.assert(
      fc.property(arbNested, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 9 }), (c, seq, bs) => expectTilesMatch(c, seq, bs)),
      { numRuns: 300 },
    );
  });
  it('fixed-length patterns', () => {
    fc.assert(
      fc.property(arbFixed, fc.integer({ min: 1, max: 9 }), (c, bs) => expectTilesMatch(c, c.length!, bs)),
      { numRuns: 200 },
    );
  });
  it('classify on arbitrary rectangles equals scanning them', () => {
    fc.assert(
      fc.property(arbNested, fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 12 }), (c, i0, h, j0, w) => {
        let any = false;
        let all = true;
        for (let i = i0; i < i0 + h; i++) for (let j = j0; j < j0 + w; j++) (c.ref(i, j) ? (any = true) : (all = false));
        expect(c.pattern.classify(i0, i0 + h, j0, j0 + w), c.name).toBe(all ? 1 : any ? 2 : 0);
      }),
      { numRuns: 400 },
    );
  });
});

describe('toBlockMask', () => {
  it('causal with blockSize 4 on seq 10: diagonal tiles partial, lower full, upper skipped; bits LSB first', () => {
    const m = toBlockMask(causal(), { seq: 10, blockSize: 4 });
    expect(m.nb).toBe(3);
    expect(Array.from(m.tiles)).toEqual([2, 0, 0, 1, 2, 0, 1, 1, 2]);
    // Row 1 allows keys 0 and 1: element (1, 1) is bit 11 = byte 1, bit 3.
    expect((m.elementBits![1]! >> 3) & 1).toBe(1);
    expect((m.elementBits![1]! >> 4) & 1).toBe(0);
    expect(elementAllowed(m, 0, 9, 9)).toBe(true);
    expect(elementAllowed(m, 0, 8, 9)).toBe(false);
  });
  it('no partial tile: no element bits (block diagonal aligned with the tiles)', () => {
    const m = toBlockMask(blockDiagonal(4), { seq: 16, blockSize: 4 });
    expect(m.elementBits).toBeUndefined();
    expect(maskDensity(m)).toMatchObject({ tiles: 0.25, elements: 0.25, computedTiles: 4, allowedElements: 64 });
  });
  it('heads > 1 repeats the tiles per head; density counts every head', () => {
    const m = toBlockMask(causal(), { seq: 8, blockSize: 2, heads: 3 });
    expect(m.tiles.length).toBe(3 * 16);
    expect(toDense(m).length).toBe(3 * 64);
    const d = maskDensity(m);
    expect(d.allowedElements).toBe(3 * 36);
    expect(d.tiles).toBeCloseTo(10 / 16, 12);
  });
  it('a large sliding window classifies tiles without touching every element', () => {
    let calls = 0;
    const inner = and(causal(), or(slidingWindow(256), sinks(4)));
    const counted: Pattern = { ...inner, allowed: (i, j) => (calls++, inner.allowed(i, j)) };
    const seq = 8192;
    const m = toBlockMask(counted, { seq, blockSize: 64 });
    // Only the partial tiles (diagonal, window edge, sink column: about 3 per tile row) are read element by element.
    expect(calls).toBeLessThanOrEqual(3 * (seq / 64) * 64 * 64);
    expect(elementAllowed(m, 0, 5000, 4800)).toBe(true);
    expect(elementAllowed(m, 0, 5000, 4700)).toBe(false);
    expect(elementAllowed(m, 0, 5000, 3)).toBe(true);
    expect(elementAllowed(m, 0, 5000, 4)).toBe(false);
  });
});

describe('prefixSharing', () => {
  it('position ids continue from the prompt in every response', () => {
    const ps = prefixSharing({ prompt: 3, responses: [2, 4] });
    expect(Array.from(ps.positionIds)).toEqual([0, 1, 2, 3, 4, 3, 4, 5, 6]);
    expect(Array.from(ps.segmentIds)).toEqual([0, 0, 0, 1, 1, 2, 2, 2, 2]);
    expect(ps.pattern.allowed(6, 2)).toBe(true);
    expect(ps.pattern.allowed(6, 4)).toBe(false);
    expect(ps.pattern.allowed(4, 3)).toBe(true);
  });
});

describe('argument errors', () => {
  it('name the field', () => {
    expect(() => slidingWindow(0)).toThrow(ArgumentError);
    expect(() => slidingWindow(0)).toThrow(/window/);
    expect(() => dilated(2, 0)).toThrow(/dilation/);
    expect(() => verticalStripe({ every: 3, offset: 3 })).toThrow(/offset/);
    expect(() => prefixSharing({ prompt: 2, responses: [] })).toThrow(/responses/);
    expect(() => and()).toThrow(ArgumentError);
    expect(() => toBlockMask(documents([0, 0, 1]), { seq: 4, blockSize: 2 })).toThrow(ShapeError);
    expect(() => and(documents([0, 1]), documents([0, 1, 1]))).toThrow(ShapeError);
  });
});
