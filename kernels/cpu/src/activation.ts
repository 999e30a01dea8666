// The registry's activationF32 on the addon: GELU (tanh form) and SiLU run through the fused ops' native
// activation forward; ReLU and squared ReLU, a compare per value, stay with the reference. The addon writes into an array apart from its input, so in place goes through a scratch
// buffer and one copy back.
import { activationF32Reference, BackendError, validateActivationF32Args, type ActivationF32Args, type ActivationF32Kernel } from '@sparse/tensor';
import type { NativeAddon } from './native.js';

const GELU = 0;
const SILU = 2;

export function activationF32KernelFrom(addon: NativeAddon): ActivationF32Kernel {
  const native = addon.fusedActForward;
  if (typeof native !== 'function') throw new BackendError('the native addon does not implement fusedActForward (activationF32)');
  let scratch = new Float32Array(0);
  return function activationF32Native(a: ActivationF32Args): void {
    validateActivationF32Args(a);
    const { kind, n } = a;
    if (n === 0) return;
    if (kind === 'relu' || kind === 'relu2') {
      activationF32Reference(a);
      return;
    }
    const x = a.x.subarray(a.xOffset, a.xOffset + n);
    const inPlace = a.x === a.y;
    if (inPlace && scratch.length < n) scratch = new Float32Array(n);
    const y = inPlace ? scratch.subarray(0, n) : a.y.subarray(a.yOffset, a.yOffset + n);
    native(kind === 'gelu-tanh' ? GELU : SILU, x, null, y);
    if (inPlace) a.y.set(y, a.yOffset);
  };
}
