import { ConfigError, provenanceProblems, Random, UnknownNameError } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { toDense } from './mask.js';
import { patternToDense } from './patterns.js';
import { blockMaskFromSpec, patternFromSpec, patternSpecSchema } from './spec.js';
import { normals } from './testing.js';
import { attentionMethods, createKVCache, getAttentionMethod, predictBlockMask, registerAttentionMethod } from './registry.js';
import { spargePredict } from './dynamic/predict.js';

const dense = (spec: unknown, seq: number) => Array.from(patternToDense(patternFromSpec(spec).pattern, seq));
const bySeq = (seq: number, f: (i: number, j: number) => boolean) => Array.from({ length: seq * seq }, (_, n) => (f(Math.floor(n / seq), n % seq) ? 1 : 0));

describe('pattern specs', () => {
  it('sliding window with sinks: causal window or causal sinks; blockSize carried', () => {
    const r = patternFromSpec({ pattern: 'sliding-window', window: 3, sinks: 2, blockSize: 4 });
    expect(r.blockSize).toBe(4);
    expect(Array.from(patternToDense(r.pattern, 9))).toEqual(bySeq(9, (i, j) => j <= i && (i - j < 3 || j < 2)));
    expect(r.spec).toEqual({ pattern: 'sliding-window', window: 3, sinks: 2, causal: true, blockSize: 4 });
  });
  it('and / or / not nest and equal the elementwise logic', () => {
    const spec = { and: [{ pattern: 'causal' }, { or: [{ pattern: 'dilated', window: 3, dilation: 2 }, { not: { pattern: 'block-diagonal', size: 3 } }] }] };
    expect(dense(spec, 11)).toEqual(bySeq(11, (i, j) => j <= i && ((i - j) % 2 === 0 && i - j <= 4 || Math.floor(i / 3) !== Math.floor(j / 3))));
  });
  it('every leaf builds: documents, prefix sharing (with position ids), stripes, diagonals, global tokens', () => {
    expect(dense({ pattern: 'documents', segmentIds: [0, 0, 1, 1, 1] }, 5)).toEqual(bySeq(5, (i, j) => (i < 2) === (j < 2)));
    const ps = patternFromSpec({ pattern: 'prefix-sharing', prompt: 2, responses: [1, 2] });
    expect(Array.from(ps.positionIds!)).toEqual([0, 1, 2, 2, 3]);
    expect(dense({ pattern: 'vertical-stripe', every: 3, offset: 1 }, 7)).toEqual(bySeq(7, (_i, j) => j % 3 === 1));
    expect(dense({ pattern: 'vertical-stripe', columns: [0, 5] }, 7)).toEqual(bySeq(7, (_i, j) => j === 0 || j === 5));
    expect(dense({ pattern: 'multi-diagonal', offsets: [0, -2] }, 6)).toEqual(bySeq(6, (i, j) => i === j || j === i + 2));
    expect(dense({ pattern: 'global-tokens', indices: [3] }, 6)).toEqual(bySeq(6, (i, j) => i === 3 || j === 3));
    expect(dense({ pattern: 'sinks', n: 2 }, 4)).toEqual(bySeq(4, (_i, j) => j < 2));
    expect(dense({ pattern: 'full' }, 3)).toEqual(new Array(9).fill(1));
  });
  it('refusals name the field by its path', () => {
    const issues = (spec: unknown) => {
      try {
        patternFromSpec(spec);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).issues.map((i) => `${i.path.join('.')}: ${i.message}`);
      }
      throw new Error('accepted');
    };
    expect(issues({ pattern: 'sliding-window', window: 0 })).toEqual(['window: window must be at least 1']);
    expect(issues({ pattern: 'sliding-windw', window: 4 })[0]).toMatch(/^pattern: unknown pattern "sliding-windw"; did you mean 'sliding-window'\?/);
    expect(issues({ and: [{ pattern: 'causal' }, { pattern: 'dilated', window: 2 }] })).toEqual(['and.1.dilation: dilation is required']);
    expect(issues({ or: [{ not: { pattern: 'causal', blockSize: 4 } }] })).toEqual(['or.0.not.blockSize: blockSize belongs to the outermost spec only']);
    expect(issues({ pattern: 'causal', windw: 3 })[0]).toMatch(/windw/);
    expect(issues({ pattern: 'vertical-stripe' })[0]).toMatch(/^columns:/);
    expect(issues({ and: [] })[0]).toMatch(/^and:/);
  });
  it('as a zod field in a recipe schema: defaults filled, nested paths reported', () => {
    const recipe = z.object({ attention: patternSpecSchema });
    const ok = recipe.parse({ attention: { or: [{ pattern: 'dilated', window: 2, dilation: 3 }], blockSize: 8 } });
    expect(ok.attention).toEqual({ or: [{ pattern: 'dilated', window: 2, dilation: 3, causal: true }], blockSize: 8 });
    const bad = recipe.safeParse({ attention: { and: [{ pattern: 'causal' }, { pattern: 'sinks', n: -1 }] } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.'))).toEqual(['attention.and.1.n']);
  });
  it('blockMaskFromSpec uses the spec blockSize, else the option, else refuses', () => {
    const m = blockMaskFromSpec({ pattern: 'causal', blockSize: 2 }, { seq: 6, blockSize: 3 });
    expect(m.blockSize).toBe(2);
    expect(Array.from(toDense(m))).toEqual(bySeq(6, (i, j) => j <= i));
    expect(blockMaskFromSpec({ pattern: 'causal' }, { seq: 6, blockSize: 3 }).nb).toBe(2);
    expect(() => blockMaskFromSpec({ pattern: 'causal' }, { seq: 6 })).toThrow(/blockSize/);
  });
});

describe('attention registry', () => {
  it('holds the dynamic methods; unknown names suggest the nearest', () => {
    expect(attentionMethods.list()).toEqual(['mustafar', 'seer', 'sparge', 'topk-blocks']);
    expect(() => getAttentionMethod('sparg')).toThrow(UnknownNameError);
    expect(() => getAttentionMethod('sparg')).toThrow(/sparge/);
  });
  it('predictBlockMask runs a method from a recipe config (defaults filled) and equals the direct call', () => {
    const rng = new Random(1);
    const shape = { heads: 2, seq: 24, headDim: 4 };
    const q = normals(rng, 2 * 24 * 4);
    const k = normals(rng, 2 * 24 * 4);
    const viaRegistry = predictBlockMask('sparge', { blockSize: 4, cdfThreshold: 0.6 }, { shape, q, k });
    const direct = spargePredict(shape, q, k, { blockSize: 4, cdfThreshold: 0.6, simThreshold: 0.5 });
    expect(Array.from(viaRegistry.mask.tiles)).toEqual(Array.from(direct.mask.tiles));
    const tk = predictBlockMask('topk-blocks', { blockSize: 4, k: 1 }, { shape, q, k });
    expect(tk.keep.reduce((a, b) => a + b, 0)).toBe(2 * (1 + 5 * 2));
    expect(() => predictBlockMask('sparge', { cdfThreshold: 1.5 }, { shape, q, k })).toThrow(/cdfThreshold/);
    expect(() => predictBlockMask('seer', {}, { shape, q, k })).toThrow(/gate/);
    expect(() => predictBlockMask('mustafar', {}, { shape, q, k })).toThrow(/KV cache/);
  });
  it('createKVCache builds the Mustafar cache from a config', () => {
    const c = createKVCache('mustafar', { sparsity: 0.75, vSparsity: 0.5 }, { kvHeads: 1, headDim: 8 });
    expect([c.kKeep, c.vKeep]).toEqual([2, 4]);
    expect(() => createKVCache('sparge', {}, { kvHeads: 1, headDim: 8 })).toThrow(/block masks/);
    expect(() => createKVCache('mustafar', { sparsity: 1 }, { kvHeads: 1, headDim: 8 })).toThrow(/sparsity/);
  });
  it('seer config: topK or threshold, threshold by default', () => {
    expect(attentionMethods.parse('seer', {})).toMatchObject({ threshold: 0.05, blockSize: 64 });
    expect(() => attentionMethods.parse('seer', { topK: 2, threshold: 0.1 })).toThrow(/threshold/);
  });
  it('every registered method names its paper and lists its departures (paper, differs)', () => {
    expect(provenanceProblems(attentionMethods.entries())).toEqual([]);
    expect(getAttentionMethod('topk-blocks').paper).toMatch(/^none \(this library's own method\)/);
  });
  it('registers further methods after checking them', () => {
    expect(() => registerAttentionMethod({ kind: 'attention', name: 'bad', describe: 'x', paper: 'none (a test)', differs: [], schema: z.object({}), target: 'block-mask' } as never)).toThrow(/predict/);
    expect(() => registerAttentionMethod({ kind: 'attention', name: 'bad', describe: 'x', schema: z.object({}), target: 'block-mask', predict: () => undefined } as never)).toThrow(/'bad' paper must be a non-empty citation/);
  });
});
