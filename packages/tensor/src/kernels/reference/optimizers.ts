import type { ActiveEntries, MaskedAdamArgs, MaskedSGDArgs } from '../types.js';
import { activeBitsAsBytes, validateMaskedAdamArgs, validateMaskedSGDArgs } from '../validate.js';

/** Calls fn(i, k) for the k-th active entry i, in increasing order of i. */
export function forEachActive(active: ActiveEntries, size: number, fn: (i: number, k: number) => void): void {
  if ('indices' in active) {
    active.indices.forEach((i, k) => fn(i, k));
    return;
  }
  const bytes = activeBitsAsBytes(active.bits);
  let k = 0;
  for (let i = 0; i < size; i++) if ((bytes[i >>> 3]! >>> (i & 7)) & 1) fn(i, k++);
}

/** Reference maskedAdam (float64 arithmetic per entry, rounded once per stored value). */
export function maskedAdamReference(args: MaskedAdamArgs): void {
  validateMaskedAdamArgs(args);
  const { params, grads, m, v, step, lr } = args;
  const beta1 = args.beta1 ?? 0.9;
  const beta2 = args.beta2 ?? 0.999;
  const eps = args.eps ?? 1e-8;
  const wd = args.weightDecay ?? 0;
  const c1 = 1 - beta1 ** step;
  const c2 = 1 - beta2 ** step;
  forEachActive(args.active, params.length, (i, k) => {
    const g = grads[i]!;
    const mk = beta1 * m[k]! + (1 - beta1) * g;
    const vk = beta2 * v[k]! + (1 - beta2) * g * g;
    m[k] = mk;
    v[k] = vk;
    const p = params[i]!;
    params[i] = p - lr * (mk / c1 / (Math.sqrt(vk / c2) + eps) + wd * p);
  });
}

/** Reference maskedSGD (float64 arithmetic per entry, rounded once per stored value). */
export function maskedSGDReference(args: MaskedSGDArgs): void {
  validateMaskedSGDArgs(args);
  const { params, grads, lr } = args;
  const momentum = args.momentum ?? 0;
  const wd = args.weightDecay ?? 0;
  const nesterov = args.nesterov ?? false;
  const velocity = args.velocity;
  forEachActive(args.active, params.length, (i, k) => {
    const p = params[i]!;
    let g = grads[i]! + wd * p;
    if (momentum !== 0) {
      const b = momentum * velocity![k]! + g;
      velocity![k] = b;
      g = nesterov ? g + momentum * b : b;
    }
    params[i] = p - lr * g;
  });
}
