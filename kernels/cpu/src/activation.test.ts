// The native activationF32 (the fused ops' activation forward) against the reference kernel of @sparse/tensor
// (checked against the closed forms there): every kind, lengths that are not multiples of the vector widths,
// offsets, in place and into another array, large magnitudes where the exponential saturates; nothing outside
// the span written; bad arguments get the reference's typed errors; registerCPUKernels puts it in the registry.
import { spawnSync } from 'node:child_process';
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

  it('the fused activations (GELU, SwiGLU, SiLU; forward and backward) equal float64 closed forms on the vector path here and on the portable path (child, SPARSE_FORCE_SCALAR=1)', () => {
    // Lengths cover whole vectors, a masked tail, one value, and a span past the one-thread cutoff.
    // (2^21 + 13 values run on two threads; of those, the values near the split, the tail and every
    // 997th are compared.)
    const lengths = [0, 1, 8, 9, 1031, (1 << 21) + 13];
    const inputs = lengths.map((n, c) => {
      const r = rng(40 + c);
      return {
        x: Array.from({ length: n }, (_, i) => (r() - 0.5) * (i % 13 === 0 ? 120 : 10)),
        b: Array.from({ length: n }, () => r() - 0.5),
        dy: Array.from({ length: n }, () => r() - 0.5),
      };
    });
    const script = `
const addon = require(${JSON.stringify(status.available ? status.path : '')});
const inputs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = [];
for (const { x, b, dy } of inputs) {
  const X = Float32Array.from(x), B = Float32Array.from(b), DY = Float32Array.from(dy), n = X.length;
  for (const op of [0, 1, 2]) {
    const y = new Float32Array(n), dx = new Float32Array(n), db = new Float32Array(n);
    addon.fusedActForward(op, X, op === 1 ? B : null, y);
    addon.fusedActBackward(op, DY, X, op === 1 ? B : null, dx, op === 1 ? db : null);
    const at = [];
    for (let i = 0; i < n; i++) if (n < 5000 || i % 997 === 0 || Math.abs(i - (n >> 1)) < 40 || i >= n - 40) at.push(i);
    out.push({ at, y: at.map((i) => y[i]), dx: at.map((i) => dx[i]), db: at.map((i) => db[i]) });
  }
}
console.log(JSON.stringify({ isa: addon.info().kernelIsa.fusedActForward, out }));`;
    const a = 1.5957691216057308;
    type Out = { at: number[]; y: number[]; dx: number[]; db: number[] };
    const check = (label: string, out: Out[]) => {
      let k = 0;
      let worst = { excess: 0, what: '' };
      for (const { x, b, dy } of inputs) {
        for (const op of [0, 1, 2]) {
          const { at, y, dx, db } = out[k++]!;
          expect(at.length).toBe(x.length < 5000 ? x.length : at.length);
          for (let j = 0; j < at.length; j++) {
            const i = at[j]!;
            const v = Math.fround(x[i]!);
            const bv = Math.fround(b[i]!);
            const g = Math.fround(dy[i]!);
            const u = op === 0 ? v * (a + a * 0.044715 * v * v) : v;
            const s = 1 / (1 + Math.exp(-u));
            const wantY = op === 1 ? v * s * bv : v * s;
            const d = op === 0 ? s + v * s * (1 - s) * (a + 3 * a * 0.044715 * v * v) : s + v * s * (1 - s);
            const wantDx = op === 1 ? g * bv * d : g * d;
            const close = (got: number, want: number, what: string) => {
              const excess = Math.abs(got - want) / (2e-6 * Math.max(1, Math.abs(want)));
              if (!(excess <= worst.excess) && excess > 0) worst = { excess, what: `${label} op ${op} n ${x.length} ${what} at ${i}: ${got} vs ${want}` };
            };
            close(y[j]!, wantY, 'y');
            close(dx[j]!, wantDx, 'dx');
            if (op === 1) close(db[j]!, g * v * s, 'db');
          }
        }
      }
      // the worst error over every compared value, as a fraction of its tolerance
      expect(worst.excess, worst.what).toBeLessThanOrEqual(1);
    };
    for (const [label, env, isa] of [
      ['this process', {}, status.available && status.info.isa !== 'scalar' ? 'avx2' : 'scalar'],
      ['scalar child', { SPARSE_FORCE_SCALAR: '1' }, 'scalar'],
    ] as const) {
      const r = spawnSync(process.execPath, ['-e', script], { input: JSON.stringify(inputs), encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 30 });
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { isa: string; out: Out[] };
      expect(got.isa).toBe(isa);
      check(label, got.out);
    }
  }, 120_000);

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
