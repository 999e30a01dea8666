import { count, equals, maskFromPredicate, maskFromTensor, isKept, type Mask } from '@sparse/masks';
import { provenanceProblems, Random, tensor, type Float32Tensor } from '@sparse/tensor';
import { describe, expect, it } from 'vitest';
import { getVariant, listVariants, registerVariant, variants, type AdapterState } from './index.js';

// Independent references: plain loops, no kernels.
function refMatmulT(x: Float32Tensor, w: Float32Tensor): Float64Array {
  const [n, k] = x.shape as [number, number];
  const out = w.shape[0]!;
  const y = new Float64Array(n * out);
  for (let a = 0; a < n; a++) for (let i = 0; i < out; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += x.data[a * k + j]! * w.data[i * k + j]!;
    y[a * out + i] = s;
  }
  return y;
}
function randn(rng: Random, shape: number[]): Float32Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, () => rng.normal()), shape);
}
/** Randomizes the trainable tensors, so ΔW is not zero. */
function perturb(state: AdapterState, rng: Random): AdapterState {
  for (const p of Object.values(state.params)) for (let k = 0; k < p.data.length; k++) p.data[k] = rng.normal(0, 0.5);
  return state;
}
function prune24(w: Float32Tensor): Mask {
  const inp = w.shape[1]!;
  // Keep the 2 largest |w| of every 4 consecutive inputs of a row.
  const keep = new Set<number>();
  for (let g = 0; g < w.data.length; g += 4) {
    const idx = [0, 1, 2, 3].map((t) => g + t).sort((a, b) => Math.abs(w.data[b]!) - Math.abs(w.data[a]!));
    keep.add(idx[0]!).add(idx[1]!);
  }
  void inp;
  const m = maskFromPredicate(w.shape, (k) => keep.has(k));
  for (let k = 0; k < w.data.length; k++) if (!keep.has(k)) w.data[k] = 0;
  return m;
}
function pruneRandom50(w: Float32Tensor, rng: Random): Mask {
  const order = rng.shuffle(Array.from({ length: w.data.length }, (_, k) => k));
  const drop = new Set(order.slice(0, w.data.length / 2));
  for (const k of drop) w.data[k] = 0;
  return maskFromPredicate(w.shape, (k) => !drop.has(k));
}

const VARIANTS = ['lora', 'spp', 'sqft'] as const;
/** The LoRA keys for LoRA-shaped variants; SPP has none of them. */
const cfg = (name: string, lora: Record<string, number>) => (name === 'spp' ? {} : lora);

describe('registry', () => {
  it('every registered variant names its paper and lists its departures (paper, differs)', () => {
    expect(provenanceProblems(variants.entries())).toEqual([]);
    expect(getVariant('lors').paper).toMatch(/^Hu et al\. 2025, LoRS: /);
    expect(getVariant('selective-lora').paper).toMatch(/^none \(this library's own method\)/);
    const { paper: _paper, ...noPaper } = getVariant('lora');
    expect(() => registerVariant({ ...noPaper, name: 'no-paper' } as never)).toThrow(/register adapter: 'no-paper' paper must be a non-empty citation/);
  });
  it('lists the built-ins and suggests the closest name', () => {
    expect(listVariants()).toEqual(expect.arrayContaining(['lora', 'spp', 'sqft']));
    expect(listVariants()).toEqual([...listVariants()].sort());
    expect(() => getVariant('lroa')).toThrow(/did you mean 'lora'/);
    expect(() => registerVariant(getVariant('lora'))).toThrow(/already registered/);
  });

  it('validates configs with defaults, naming the field', () => {
    expect(getVariant('lora').parseConfig({})).toEqual({ r: 8, alpha: 8, rslora: false, dropout: 0 });
    expect(getVariant('spp').parseConfig(undefined)).toEqual({ colInit: 1, rank: 1 });
    expect(() => getVariant('lora').parseConfig({ r: 0 })).toThrow(/lora: invalid config: r:/);
    expect(() => getVariant('sqft').parseConfig({ alpha: 'x' })).toThrow(/alpha/);
    expect(() => getVariant('lora').parseConfig({ rank: 4 })).toThrow(/rank/);
    expect(() => getVariant('spp').parseConfig({ r: 4 })).toThrow(/spp: invalid config: .*"r"/);
  });
});

describe.each(VARIANTS)('%s', (name) => {
  const v = getVariant(name);

  it('a freshly initialized adapter leaves outputs unchanged', () => {
    const rng = new Random(10);
    const base = randn(rng, [8, 12]);
    const x = randn(rng, [5, 12]);
    const s = v.init(base, {}, rng);
    const ref = refMatmulT(x, base);
    const y = v.forward(x, base, s);
    ref.forEach((r, k) => expect(y.data[k]).toBeCloseTo(r, 5));
    expect(v.merge(base, s).data).toEqual(base.data);
  });

  it('merged forward equals unmerged forward (1e-5) on a dense base, and unmerge restores the base (1e-6)', () => {
    const rng = new Random(11);
    const base = randn(rng, [8, 12]);
    const x = randn(rng, [5, 12]);
    const s = perturb(v.init(base, cfg(name, { r: 4, alpha: 8 }), rng), rng);
    const merged = v.merge(base, s);
    const viaMerged = refMatmulT(x, merged);
    const unmerged = v.forward(x, base, s);
    viaMerged.forEach((r, k) => expect(Math.abs(unmerged.data[k]! - r)).toBeLessThan(1e-5 * Math.max(1, Math.abs(r))));
    const back = v.unmerge(merged, s);
    back.data.forEach((w, k) => expect(Math.abs(w - base.data[k]!)).toBeLessThan(1e-6 * Math.max(1, Math.abs(base.data[k]!))));
    expect(base.data).toEqual(randn(new Random(11), [8, 12]).data); // inputs untouched
  });

  it.each(['2:4', '50% unstructured'])('merging into a %s base keeps the mask bit-exact by default', (kind) => {
    const rng = new Random(12);
    const base = randn(rng, [16, 32]);
    const mask = kind === '2:4' ? prune24(base) : pruneRandom50(base, rng);
    expect(count(mask)).toBe(256);
    const s = perturb(v.init(base, cfg(name, { r: 4 }), rng), rng);
    // Both with the mask given and derived from the base's zeros.
    for (const merged of [v.merge(base, s), v.merge(base, s, { mask })]) {
      expect(equals(maskFromTensor(merged), mask)).toBe(true);
      for (let k = 0; k < merged.data.length; k++) if (!isKept(mask, k)) expect(Object.is(merged.data[k], 0)).toBe(true);
      // Kept entries did change: the adapter is not a no-op.
      expect(merged.data.some((w, k) => isKept(mask, k) && w !== base.data[k])).toBe(true);
      const back = v.unmerge(merged, s, { mask });
      back.data.forEach((w, k) => expect(Math.abs(w - base.data[k]!)).toBeLessThan(1e-6 * Math.max(1, Math.abs(base.data[k]!))));
    }
  });

  it('trainable parameter count equals the closed form', () => {
    const [out, inp, r] = [24, 40, 6];
    const closed = name === 'spp' ? out + inp : r * (inp + out);
    expect(v.trainableCount([out, inp], cfg(name, { r }))).toBe(closed);
    const s = v.init(tensor(new Float32Array(out * inp), [out, inp]), cfg(name, { r }), new Random(0));
    expect(Object.values(s.params).reduce((a, p) => a + p.data.length, 0)).toBe(closed);
  });
});

describe('densify', () => {
  it('lets LoRA fill the zeros of a sparse base, and unmerge with densify undoes it', () => {
    const rng = new Random(13);
    const base = randn(rng, [8, 16]);
    const mask = prune24(base);
    const s = perturb(getVariant('lora').init(base, { r: 2 }, rng), rng);
    const merged = getVariant('lora').merge(base, s, { densify: true });
    expect(count(maskFromTensor(merged))).toBe(128);
    const d = getVariant('lora').delta(s, base);
    merged.data.forEach((w, k) => expect(w).toBeCloseTo(base.data[k]! + d.data[k]!, 6));
    expect(count(mask)).toBe(64);
    const back = getVariant('lora').unmerge(merged, s, { densify: true });
    back.data.forEach((w, k) => expect(w).toBeCloseTo(base.data[k]!, 6));
  });

  it('is refused by SQFT and ignored by SPP (whose ΔW is zero off the mask)', () => {
    const rng = new Random(14);
    const base = randn(rng, [4, 8]);
    const mask = prune24(base);
    expect(() => getVariant('sqft').merge(base, getVariant('sqft').init(base, {}, rng), { densify: true })).toThrow(/SQFT always merges/);
    const spp = perturb(getVariant('spp').init(base, {}, rng), rng);
    expect(equals(maskFromTensor(getVariant('spp').merge(base, spp, { densify: true })), mask)).toBe(true);
  });

  it('rejects a state of another variant and a base of another shape', () => {
    const base = randn(new Random(1), [4, 8]);
    const s = getVariant('lora').init(base, {}, new Random(1));
    expect(() => getVariant('spp').merge(base, s)).toThrow(/not 'spp'/);
    expect(() => getVariant('lora').merge(randn(new Random(1), [4, 4]), s)).toThrow(/\[4, 4\]/);
  });
});
