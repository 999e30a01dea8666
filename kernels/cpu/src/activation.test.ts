// The native activationF32 (the fused ops' activation forward) against the reference kernel of @sparse/tensor
// (checked against the closed forms there): every kind, lengths that are not multiples of the vector widths,
// offsets, in place and into another array, large magnitudes where the exponential saturates; nothing outside
// the span written; bad arguments get the reference's typed errors; registerCPUKernels puts it in the registry.
import { ArgumentError, REFERENCE_BACKEND, getKernel, type ActivationF32Kind } from '@sparse/tensor';
import { expect, it } from 'vitest';
import { rng } from './__fixtures__/gemm-cases.js';
import { nativeSuite, status } from './__fixtures__/native-suite.js';
import { activationF32KernelFrom } from './activation.js';
import { registerCPUKernels } from './index.js';

const suite = nativeSuite(status.available && typeof status.addon.fusedActForward !== 'function' ? 'this addon build has no fusedActForward' : undefined);
const KINDS: ActivationF32Kind[] = ['gelu-tanh', 'silu', 'relu', 'relu2'];

suite('native activationF32', () => {
  const native = () => activationF32KernelFrom(status.available ? status.addon : (undefined as never));
  const reference = () => getKernel('activationF32', REFERENCE_BACKEND);

  it.each(KINDS)('%s equals the reference, in place and apart, at offsets', (kind) => {
    const k = native();
    const r = rng(11 + kind.length);
    for (const n of [0, 1, 3, 7, 8, 15, 16, 17, 33, 257, 4096, 4099]) {
      for (const [xo, yo] of [[0, 0], [3, 5]] as const) {
        const x = new Float32Array(xo + n + 3);
        for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * (i % 11 === 0 ? 200 : 8);
        const want = new Float32Array(yo + n + 3).fill(-3);
        reference()({ kind, n, x, xOffset: xo, y: want, yOffset: yo });
        const got = new Float32Array(yo + n + 3).fill(-3);
        k({ kind, n, x, xOffset: xo, y: got, yOffset: yo });
        const inPlace = Float32Array.from(x);
        k({ kind, n, x: inPlace, xOffset: xo, y: inPlace, yOffset: xo });
        for (let i = 0; i < got.length; i++) {
          const inside = i >= yo && i < yo + n;
          if (!inside) {
            expect(got[i]).toBe(-3);
            continue;
          }
          const w = want[i]!;
          expect(Math.abs(got[i]! - w), `${kind} n ${n} at ${i}: ${got[i]} vs ${w}`).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(w)));
          expect(inPlace[i - yo + xo]).toBe(got[i]);
        }
        for (let i = 0; i < x.length; i++) if (i < xo || i >= xo + n) expect(inPlace[i]).toBe(x[i]);
      }
    }
  });

  it("the addon's SiLU op (2): forward x·sigmoid(x), backward dy·(s + x s (1 - s)), against float64 closed forms", () => {
    const addon = status.available ? (status.addon as unknown as { fusedActForward: (op: number, x: Float32Array, b: null, y: Float32Array) => void; fusedActBackward: (op: number, dy: Float32Array, x: Float32Array, b: null, dx: Float32Array, db: null) => void }) : undefined;
    const r = rng(5);
    const n = 1031;
    const x = Float32Array.from({ length: n }, (_, i) => (r() - 0.5) * (i % 13 === 0 ? 120 : 10));
    const dy = Float32Array.from({ length: n }, () => r() - 0.5);
    const y = new Float32Array(n);
    const dx = new Float32Array(n);
    addon!.fusedActForward(2, x, null, y);
    addon!.fusedActBackward(2, dy, x, null, dx, null);
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      const s = 1 / (1 + Math.exp(-v));
      expect(Math.abs(y[i]! - v * s)).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(v * s)));
      const g = dy[i]! * (s + v * s * (1 - s));
      expect(Math.abs(dx[i]! - g)).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(g)));
    }
    expect(() => addon!.fusedActForward(2, x, x as unknown as null, new Float32Array(n))).toThrow(/b must be null for GELU and SiLU/);
  });

  it('names bad arguments as the reference does, and registerCPUKernels registers it', () => {
    const x = new Float32Array(8);
    expect(() => native()({ kind: 'gelu-tanh', n: 4, x, xOffset: 0, y: x.subarray(1), yOffset: 0 })).toThrow(ArgumentError);
    expect(() => native()({ kind: 'swish' as ActivationF32Kind, n: 4, x, xOffset: 0, y: x, yOffset: 0 })).toThrow(/kind must be one of/);
    const reg = registerCPUKernels();
    try {
      expect(reg.kernels).toContain('activationF32');
      expect(getKernel('activationF32').name).toBe('activationF32Native');
    } finally {
      reg.unregister();
    }
  });
});
