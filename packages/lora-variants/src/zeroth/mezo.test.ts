import { isKept, maskAll, maskFromBooleans, maskToBooleans, type Mask } from '@sparse/masks';
import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import { afterEach, describe, expect, it } from 'vitest';
import { MeZO, mezoStep, smallMagnitudeMask } from './mezo.js';

/** L(θ) = ½ Σ a_k θ_k² − Σ b_k θ_k over all parameters flattened, computed in float64. */
function quadratic(a: number[], b: number[]) {
  const loss = (flat: ArrayLike<number>) => {
    let s = 0;
    for (let k = 0; k < flat.length; k++) s += 0.5 * a[k]! * flat[k]! ** 2 - b[k]! * flat[k]!;
    return s;
  };
  const grad = (flat: ArrayLike<number>) => Array.from(flat, (x, k) => a[k]! * x - b[k]!);
  return { loss, grad };
}

const flatten = (params: readonly Float32Array[]) => params.flatMap((p) => [...p]);

describe('mezoStep', () => {
  it('with a fixed seed equals the SPSA finite-difference formula computed independently', async () => {
    const rng = new Random(1);
    const params = [Float32Array.from({ length: 5 }, () => rng.normal()), Float32Array.from({ length: 3 }, () => rng.normal())];
    const a = Array.from({ length: 8 }, () => rng.uniform(0.5, 2));
    const b = Array.from({ length: 8 }, () => rng.normal());
    // a non-quadratic term so the finite difference is not the exact directional derivative
    const f = (x: ArrayLike<number>) => quadratic(a, b).loss(x) + Math.sin(3 * x[0]!) * x[6]! ** 3;
    const theta0 = flatten(params);
    const [seed, lr, eps] = [1234, 0.01, 1e-2];

    // Reference: z is Random(seed).normal() in parameter order; L± in float64 from θ0 ± εz.
    const zr = new Random(seed);
    const z = theta0.map(() => zr.normal());
    const lp = f(theta0.map((x, k) => x + eps * z[k]!));
    const lm = f(theta0.map((x, k) => x - eps * z[k]!));
    const g = (lp - lm) / (2 * eps);
    const expected = theta0.map((x, k) => x - lr * g * z[k]!);

    const res = await mezoStep(params, async () => f(flatten(params)), { seed, lr, eps });
    expect(res.projectedGrad).toBeCloseTo(g, 3);
    expect(res.lossPlus).toBeCloseTo(lp, 5);
    expect(res.lossMinus).toBeCloseTo(lm, 5);
    flatten(params).forEach((x, k) => expect(x).toBeCloseTo(expected[k]!, 5));
    expect(Math.abs(g)).toBeGreaterThan(0.1);
  });

  it('on a quadratic, the update direction averages to the true gradient over many seeds', async () => {
    const rng = new Random(2);
    const n = 6;
    const a = Array.from({ length: n }, () => rng.uniform(0.5, 2));
    const b = Array.from({ length: n }, () => rng.normal());
    const q = quadratic(a, b);
    const theta0 = Float32Array.from({ length: n }, () => rng.normal());
    const trueGrad = q.grad(theta0);
    const lr = 1e-3;
    const runs = 20_000;
    const mean = new Float64Array(n);
    for (let s = 0; s < runs; s++) {
      const p = Float32Array.from(theta0);
      await mezoStep([p], () => q.loss(p), { seed: s, lr, eps: 1e-3 });
      for (let k = 0; k < n; k++) mean[k] = mean[k]! + (theta0[k]! - p[k]!) / lr / runs;
    }
    // E[(zᵀ∇L) z] = ∇L; the standard error of each component is about |∇L| / √runs.
    const norm = Math.hypot(...trueGrad);
    const err = Math.hypot(...trueGrad.map((g, k) => g - mean[k]!));
    expect(err / norm).toBeLessThan((5 * Math.sqrt(n)) / Math.sqrt(runs));
    const cos = trueGrad.reduce((s, g, k) => s + g * mean[k]!, 0) / (norm * Math.hypot(...mean));
    expect(cos).toBeGreaterThan(0.99);
  });

  it('Sparse MeZO never changes unmasked entries and matches the formula on masked ones', async () => {
    const rng = new Random(3);
    const params = [Float32Array.from({ length: 40 }, () => rng.normal()), Float32Array.from({ length: 10 }, () => rng.normal())];
    const masks = [smallMagnitudeMask(params[0]!, 0.25), null];
    const before = params.map((p) => Float32Array.from(p));
    const q = quadratic(Array(50).fill(1), Array(50).fill(0.5));
    const opt = new MeZO(params, { lr: 0.05, eps: 1e-3, seed: 9, masks });
    for (let s = 0; s < 30; s++) await opt.step(() => q.loss(flatten(params)));
    for (let k = 0; k < 40; k++) {
      if (!isKept(masks[0]!, k)) expect(Object.is(params[0]![k], before[0]![k])).toBe(true);
    }
    expect(params[0]!.some((x, k) => isKept(masks[0]!, k) && x !== before[0]![k])).toBe(true);
    expect(params[1]!.some((x, k) => x !== before[1]![k])).toBe(true);
    expect(q.loss(flatten(params))).toBeLessThan(q.loss(flatten(before)));

    // One masked step against the formula: z is drawn only for masked entries, in order.
    const p = [Float32Array.from(before[0]!)];
    const m = [masks[0]!];
    const loss = (x: ArrayLike<number>) => quadratic(Array(40).fill(1), Array(40).fill(0.5)).loss(x);
    const zr = new Random(77);
    const z = [...p[0]!].map((_, k) => (isKept(m[0]!, k) ? zr.normal() : 0));
    const t0 = [...p[0]!];
    const g = (loss(t0.map((x, k) => x + 1e-3 * z[k]!)) - loss(t0.map((x, k) => x - 1e-3 * z[k]!))) / 2e-3;
    await mezoStep(p, () => loss(p[0]!), { seed: 77, lr: 0.1, eps: 1e-3, masks: m });
    p[0]!.forEach((x, k) => expect(x).toBeCloseTo(t0[k]! - 0.1 * g * z[k]!, 4));
  });

  it('MeZO with maskDensity masks the smallest-magnitude entries of the initial weights', async () => {
    const rng = new Random(6);
    const p = rng.fillNormal(new Float32Array(20));
    const before = Float32Array.from(p);
    const mask = smallMagnitudeMask(p, 0.3);
    const opt = new MeZO([p], { lr: 0.1, maskDensity: 0.3, seed: 2 });
    expect(opt.opts.masks![0]).toEqual(mask);
    for (let s = 0; s < 5; s++) await opt.step(() => p.reduce((a, x) => a + (x - 1) ** 2, 0));
    p.forEach((x, k) => (isKept(mask, k) ? expect(x).not.toBe(before[k]) : expect(x).toBe(before[k])));
    expect(() => new MeZO([p], { lr: 0.1, maskDensity: 0.3, masks: [null] })).toThrow(/not both/);
  });

  it('smallMagnitudeMask marks the fraction of smallest |θ| (ties to the lower index)', () => {
    const m = smallMagnitudeMask([3, -1, 0.5, -0.5, 2], 0.4);
    expect(m.shape).toEqual([5]);
    expect([...maskToBooleans(m)]).toEqual([0, 0, 1, 1, 0]);
    expect([...maskToBooleans(smallMagnitudeMask([1, 1, 1], 0.34))]).toEqual([1, 0, 0]);
    expect(() => smallMagnitudeMask([1], 1.5)).toThrow(ArgumentError);
  });

  it('validates seeds, masks and the loss', async () => {
    const p = [new Float32Array(4)];
    await expect(mezoStep(p, () => 0, { seed: 0.5, lr: 0.1 })).rejects.toThrow(/seed/);
    await expect(mezoStep(p, () => 0, { seed: 1, lr: 0.1, eps: 0 })).rejects.toThrow(/eps/);
    await expect(mezoStep(p, () => 0, { seed: 1, lr: 0.1, masks: [maskAll([3])] })).rejects.toThrow(ShapeError);
    await expect(mezoStep(p, () => 0, { seed: 1, lr: 0.1, masks: [maskAll([4]), null] })).rejects.toThrow(ShapeError);
    await expect(mezoStep(p, () => 0, { seed: 1, lr: 0.1, masks: [new Uint8Array(4) as unknown as Mask] })).rejects.toThrow(/typed array.*maskFromBooleans/);
    await expect(mezoStep(p, () => 0, { seed: 1, lr: 0.1, masks: [{ shape: [4], bits: new Uint32Array(2) }] })).rejects.toThrow(ArgumentError);
    // any shape of the parameter's size: entries are read in row-major order
    const viaMatrix = [Float32Array.of(1, 2, 3, 4)];
    await mezoStep(viaMatrix, () => viaMatrix[0]!.reduce((a, x) => a + x * x, 0), { seed: 3, lr: 0.1, masks: [maskFromBooleans([1, 0, 0, 1], [2, 2])] });
    expect([viaMatrix[0]![1], viaMatrix[0]![2]]).toEqual([2, 3]);
    expect(viaMatrix[0]![0]).not.toBe(1);
    await expect(mezoStep(p, () => NaN, { seed: 1, lr: 0.1 })).rejects.toThrow(/finite/);
    // a throwing loss leaves the parameters where they were
    const q = [Float32Array.of(0.5, -1, 2, 0)];
    let calls = 0;
    await expect(mezoStep(q, () => (++calls === 2 ? Promise.reject(new Error('boom')) : 1), { seed: 1, lr: 0.1, eps: 0.25 })).rejects.toThrow('boom');
    expect([...q[0]!]).toEqual([0.5, -1, 2, 0].map((x, k) => expect.closeTo(x, 6) as unknown as number));
  });
});

describe('memory', () => {
  const saved = { Float32Array, Float64Array, Int32Array, Uint8Array, Array };
  afterEach(() => Object.assign(globalThis, saved));

  it('a step allocates no parameter-sized buffer: z is regenerated, parameters change in place', async () => {
    const n = 50_000;
    const rng = new Random(4);
    const params = [rng.fillNormal(new Float32Array(n)), rng.fillNormal(new Float32Array(n))];
    const refs = [...params];
    const allocations: number[] = [];
    // Count every typed-array and array allocation the step makes, with its length.
    for (const [name, ctor] of Object.entries(saved)) {
      (globalThis as Record<string, unknown>)[name] = new Proxy(ctor, {
        construct(target, args) {
          allocations.push(typeof args[0] === 'number' ? args[0] : ((args[0] as ArrayLike<unknown>)?.length ?? 0));
          return Reflect.construct(target, args);
        },
      });
    }
    let s = 0;
    const loss = () => {
      s = 0;
      for (const p of params) for (let k = 0; k < p.length; k += 97) s += p[k]! ** 2;
      return s;
    };
    await mezoStep(params, loss, { seed: 5, lr: 1e-3 });
    const during = [...allocations];
    // control: a copy of a parameter made the way a naive step would is seen by the counter
    Float32Array.from(params[0]!);
    Object.assign(globalThis, saved);
    expect(params[0]).toBe(refs[0]);
    expect(Math.max(0, ...during)).toBeLessThan(n);
    expect(allocations.length).toBe(during.length + 1);
    expect(allocations.at(-1)).toBe(n);
  });
});
