// The sparse training path: the CSR pattern of a mask lists exactly its kept entries (property test);
// the packed product's value and gradients (input, and weight at the kept entries) equal the dense
// product through W ⊙ M with tf.grads to 1e-5; 'auto' packs the layers the stored threshold admits;
// repacking to a mask of another count swaps in a variable of the new size, moments carried; and
// whole runs (masked training after a prune, RigL from scratch) give the same losses on either path to
// 1e-4, the same masks, and on the sparse path resume exactly.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, isKept, maskFromBooleans } from '@sparse/masks';
import { kernelBackend, Random } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { linearInfo } from '../model/types.js';
import { resolveRecipe } from '../recipe/load.js';
import { readCheckpoint } from '../run/checkpoint.js';
import { startRun } from '../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../testing/resume.js';
import { NamedAdam } from './adam.js';
import { csrPattern, SparseLinears, sparseLinearProduct } from './sparse-linear.js';
import { choosePath, cpuModel } from './sparse-path.js';

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-path-'));
  await chooseBackend();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('csrPattern', () => {
  it('lists exactly the kept entries, row by row, columns ascending', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 13 }), fc.integer(), (rows, cols, seed) => {
        const rng = new Random(seed);
        const keep = Array.from({ length: rows * cols }, () => rng.next() < 0.4);
        const p = csrPattern(maskFromBooleans(keep, [rows, cols]));
        expect(p.indptr[0]).toBe(0);
        const listed: number[] = [];
        for (let r = 0; r < rows; r++) {
          for (let q = p.indptr[r]!; q < p.indptr[r + 1]!; q++) {
            if (q > p.indptr[r]!) expect(p.indices[q]!).toBeGreaterThan(p.indices[q - 1]!);
            listed.push(r * cols + p.indices[q]!);
            expect(p.flat[q]).toBe(r * cols + p.indices[q]!);
          }
        }
        expect(listed).toEqual(keep.flatMap((k, i) => (k ? [i] : [])));
      }),
    );
  });
});

describe('sparseLinearProduct', () => {
  it(`equals x (W ⊙ M)ᵀ and its tf.grads in x and at the kept entries of W, to 1e-5 (kernels: ${kernelBackend('linearCSR') ?? 'none'})`, () => {
    const rng = new Random(3);
    for (const [tokens, out, inp, density] of [[7, 5, 11, 0.3], [33, 24, 40, 0.1], [1, 3, 2, 1], [16, 8, 8, 0]] as const) {
      const keep = Array.from({ length: out * inp }, () => rng.next() < density);
      const mask = maskFromBooleans(keep, [out, inp]);
      const p = csrPattern(mask);
      const w = Float32Array.from({ length: out * inp }, () => rng.normal());
      const x = tf.tensor2d(Float32Array.from({ length: tokens * inp }, () => rng.normal()), [tokens, inp]);
      const upstream = tf.tensor2d(Float32Array.from({ length: tokens * out }, () => rng.normal()), [tokens, out]);
      const m = tf.tensor2d(Float32Array.from(keep, Number), [out, inp]);
      const wt = tf.tensor2d(w, [out, inp]);
      const packed = tf.tensor1d(Float32Array.from(p.flat, (k) => w[k]!));
      const dense = (xs: tf.Tensor, ws: tf.Tensor) => tf.sum(tf.mul(tf.matMul(xs as tf.Tensor2D, tf.mul(ws, m) as tf.Tensor2D, false, true), upstream));
      const sparse = (xs: tf.Tensor, vs: tf.Tensor) => tf.sum(tf.mul(sparseLinearProduct(xs as tf.Tensor2D, vs as tf.Tensor1D, p), upstream));
      const yd = tf.matMul(x, tf.mul(wt, m) as tf.Tensor2D, false, true).dataSync();
      const ys = sparseLinearProduct(x, packed, p).dataSync();
      const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
        expect(a.length, what).toBe(b.length);
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), `${what}[${i}]`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(b[i]!)));
      };
      close(ys, yd, 'y');
      const [gxd, gwd] = tf.grads(dense)([x, wt]);
      const [gxs, gvs] = tf.grads(sparse)([x, packed]);
      close(gxs!.dataSync(), gxd!.dataSync(), 'dx');
      const gw = gwd!.dataSync();
      close(gvs!.dataSync(), Float32Array.from(p.flat, (k) => gw[k]!), 'dW at the kept entries');
      expect(count(mask)).toBe(p.flat.length);
    }
  });
});

describe('choosePath', () => {
  const params = () => ({ a: tf.variable(tf.zeros([64, 64])), b: tf.variable(tf.zeros([8, 8])) });
  const layers = [linearInfo('a', 64, 64, 0, 0, 'mlp.up'), linearInfo('b', 8, 8, 0, 1, 'mlp.down')];
  const maskOf = (rows: number, cols: number, density: number) => maskFromBooleans(Array.from({ length: rows * cols }, (_, i) => i < density * rows * cols), [rows, cols]);
  it('auto packs the masked layers within the stored threshold for this CPU; dense and sparse decide outright', () => {
    const file = join(tmp, 'threshold.json');
    writeFileSync(file, JSON.stringify({ [cpuModel()]: { maxDensity: 0.25, minWeights: 1000, measured: 'in a test' } }));
    const before = process.env.SPARSE_PATH_FILE;
    process.env.SPARSE_PATH_FILE = file;
    try {
      const p = params();
      const masks = new Map([['a.weight', maskOf(64, 64, 0.2)], ['b.weight', maskOf(8, 8, 0.1)]]);
      const auto = choosePath('auto', { 'a.weight': p.a, 'b.weight': p.b }, layers, masks);
      if (kernelBackend('linearCSR') === 'reference') expect(auto.sparse).toBeUndefined();
      else {
        expect(auto.sparse?.names()).toEqual(['a.weight']); // b is below minWeights
        expect(auto.line).toContain('measured in a test');
      }
      const dense = new Map([['a.weight', maskOf(64, 64, 0.5)]]);
      expect(choosePath('auto', { 'a.weight': p.a, 'b.weight': p.b }, layers, dense).sparse).toBeUndefined();
      const forced = choosePath('sparse', { 'a.weight': p.a, 'b.weight': p.b }, layers, dense);
      expect(forced.sparse?.names()).toEqual(['a.weight']);
      expect(choosePath('dense', { 'a.weight': p.a, 'b.weight': p.b }, layers, masks).sparse).toBeUndefined();
      auto.sparse?.dispose();
      forced.sparse?.dispose();
      tf.dispose([p.a, p.b]);
    } finally {
      if (before === undefined) delete process.env.SPARSE_PATH_FILE;
      else process.env.SPARSE_PATH_FILE = before;
    }
  });

  it('moves Adam moments between the packed and the dense layout losslessly', () => {
    const w = tf.variable(tf.tensor2d(Float32Array.from({ length: 12 }, (_, i) => i + 1), [3, 4]));
    const mask = maskFromBooleans([1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1], [3, 4]);
    const s = new SparseLinears({ 'w.weight': w }, [{ info: linearInfo('w', 3, 4, 0, 0, 'mlp.up'), mask }]);
    const key = SparseLinears.key('w.weight');
    const packed = { t: 3, m: { [key]: { data: Float32Array.of(1, 2, 3, 4, 5), shape: [5] } }, v: { [key]: { data: Float32Array.of(6, 7, 8, 9, 10), shape: [5] } }, since: { [key]: 1 } };
    const dense = s.denseState(packed);
    expect(Array.from(dense.m['w.weight']!.data)).toEqual([1, 0, 0, 2, 0, 3, 4, 0, 0, 0, 0, 5]);
    expect(dense.m['w.weight']!.shape).toEqual([3, 4]);
    expect(dense.since).toEqual({ 'w.weight': 1 });
    expect(s.packedState(dense)).toEqual(packed);
    s.dispose();
    w.dispose();
  });

  it('repack to a mask of another count (SRigL ablation) puts a new variable of the new size in the variable map, carrying the moments of entries active before and after', () => {
    const w = tf.variable(tf.tensor2d(Float32Array.from({ length: 12 }, (_, i) => i + 1), [3, 4]));
    const other = tf.variable(tf.zeros([2]));
    const before = maskFromBooleans([1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0], [3, 4]); // flat 0 1 5 6 8 10
    const s = new SparseLinears({ 'w.weight': w }, [{ info: linearInfo('w', 3, 4, 0, 0, 'mlp.up'), mask: before }]);
    const key = SparseLinears.key('w.weight');
    const vars = s.variables(new Map([['w.weight', w], ['o', other]]));
    const old = vars.get(key)!;
    expect(Array.from(old.dataSync())).toEqual([1, 2, 6, 7, 9, 11]);
    const optimizer = new NamedAdam();
    optimizer.load({ t: 2, m: { [key]: { data: Float32Array.of(1, 2, 3, 4, 5, 6), shape: [6] } }, v: { [key]: { data: Float32Array.of(7, 8, 9, 10, 11, 12), shape: [6] } } });
    // row 1 ablated, rows 0 and 2 at 3 and 4 entries: 7 entries, flat 0 1 2 8 9 10 11
    const grown = maskFromBooleans([1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1], [3, 4]);
    s.repack('w.weight', grown, optimizer);
    const now = vars.get(key)!;
    expect(now).not.toBe(old);
    expect(old.isDisposed).toBe(true);
    expect(now.shape).toEqual([7]);
    expect(Array.from(now.dataSync())).toEqual([1, 2, 3, 9, 10, 11, 12]);
    expect(vars.get('o')).toBe(other);
    expect(s.counts().get('w.weight')).toBe(7);
    const st = optimizer.state();
    // entries 0 1 8 10 were active before (moments 1 2 5 6), 2 9 11 are new (zero)
    expect(Array.from(st.m[key]!.data)).toEqual([1, 2, 0, 5, 0, 6, 0]);
    expect(Array.from(st.v[key]!.data)).toEqual([7, 8, 0, 11, 0, 12, 0]);
    // back to 6 entries (flat 0 1 3 8 9 10): a new variable again
    const after = maskFromBooleans([1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0], [3, 4]);
    s.repack('w.weight', after, optimizer);
    expect(vars.get(key)!.shape).toEqual([6]);
    expect(Array.from(vars.get(key)!.dataSync())).toEqual([1, 2, 4, 9, 10, 11]);
    expect(Array.from(optimizer.state().m[key]!.data)).toEqual([1, 2, 0, 5, 0, 6]);
    // the same count (6): the values go into the same variable
    const same = vars.get(key)!;
    s.repack('w.weight', before, optimizer);
    expect(vars.get(key)).toBe(same);
    expect(Array.from(same.dataSync())).toEqual([1, 2, 6, 7, 9, 11]);
    optimizer.dispose();
    s.dispose();
    tf.dispose([w, other]);
  });
});

describe('whole runs on either path', () => {
  const MODEL = { architecture: 'gpt' as const, d: 32, layers: 1, heads: 2, ctx: 16 };
  const losses = (dir: string) => events(dir).filter((e) => e.event === 'step').map((e) => e.loss!);
  async function both(name: string, stages: Record<string, unknown>[]) {
    const out: Record<string, string> = {};
    for (const path of ['dense', 'sparse'] as const) {
      const recipe = resolveRecipe({ seed: 8, model: MODEL, eval: { windows: 2, batch: 2 }, stages: stages.map((s) => (s.stage === 'train' ? { ...s, path } : s)) });
      out[path] = join(tmp, `${name}-${path}`);
      await startRun(recipe, { dir: out[path], ...quiet });
    }
    const [a, b] = [losses(out.dense!), losses(out.sparse!)];
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), `step ${i}`).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(a[i]!)));
    const [ca, cb] = [await readCheckpoint(out.dense!), await readCheckpoint(out.sparse!)];
    for (const [n, m] of ca.masks) {
      expect(count(cb.masks.get(n)!)).toBe(count(m));
      for (let k = 0; k < m.shape[0]! * m.shape[1]!; k++) if (isKept(m, k) !== isKept(cb.masks.get(n)!, k)) throw new Error(`${n}: masks differ at ${k}`);
      // off the mask the sparse path's weights are exactly 0 too
      const w = cb.params.get(n)!.data as Float32Array;
      for (let k = 0; k < w.length; k++) if (!isKept(m, k)) expect(w[k]).toBe(0);
    }
    const said = events(out.sparse!).filter((e) => e.event === 'path') as unknown as { path: string }[];
    expect(said.map((e) => e.path)).toContain('sparse');
    return out;
  }

  it('masked training after a 70% prune', async () => {
    await both('masked', [
      { stage: 'pretrain', steps: 4, batch: 4 },
      { stage: 'prune', method: 'magnitude', config: { sparsity: 0.7 } },
      { stage: 'train', method: 'masked', steps: 10, batch: 4, lr: 1e-2 },
    ]);
  }, 300_000);

  it('rigl from scratch at 80% ERK, and the sparse path resumes exactly', async () => {
    const train = { stage: 'train', method: 'rigl', config: { sparsity: 0.8, budget: 'erk', every: 2, end: 0.75, fraction: 0.5 }, steps: 12, batch: 4, lr: 1e-2, checkpointEvery: 3 };
    const out = await both('rigl', [train]);
    const recipe = resolveRecipe({ seed: 8, model: MODEL, eval: { windows: 2, batch: 2 }, stages: [{ ...train, path: 'sparse' }] });
    const broken = join(tmp, 'rigl-sparse-broken');
    await runWithStops(recipe, broken, [{ stage: 0, step: 5, resumeAt: 3, state: 'regrow' }, { stage: 0, step: 8, resumeAt: 6, state: 'regrow' }]);
    await expectSameRun(out.sparse!, broken);
  }, 300_000);
});

describe('path: sparse in a recipe', () => {
  it('is refused for a method whose masks change size, naming the methods that take it', () => {
    expect(() => resolveRecipe({ model: { architecture: 'gpt', d: 16, layers: 1, heads: 2, ctx: 16 }, stages: [{ stage: 'train', method: 'gmp', path: 'sparse' }] })).toThrow(
      /stages\[0\]\.path: train method 'gmp' runs dense .*path: sparse applies to .*masked.*rigl/,
    );
  });
});
