// Reference activationF32: the elementwise nonlinearities of the models' MLPs, one value at a time in float64.
import { validateActivationF32Args } from '../validate.js';
import type { ActivationF32Args } from '../types.js';

const GELU_A = 2 * Math.sqrt(2 / Math.PI);
const GELU_B = GELU_A * 0.044715;

export function activationF32Reference(args: ActivationF32Args): void {
  validateActivationF32Args(args);
  const { kind, n, x, xOffset: xo, y, yOffset: yo } = args;
  switch (kind) {
    case 'gelu-tanh':
      for (let i = 0; i < n; i++) {
        const v = x[xo + i]!;
        y[yo + i] = v / (1 + Math.exp(-v * (GELU_A + GELU_B * v * v)));
      }
      return;
    case 'silu':
      for (let i = 0; i < n; i++) {
        const v = x[xo + i]!;
        y[yo + i] = v / (1 + Math.exp(-v));
      }
      return;
    case 'relu':
      for (let i = 0; i < n; i++) {
        const v = x[xo + i]!;
        y[yo + i] = v > 0 ? v : 0;
      }
      return;
    case 'relu2':
      for (let i = 0; i < n; i++) {
        const v = x[xo + i]!;
        y[yo + i] = v > 0 ? v * v : 0;
      }
      return;
  }
}
