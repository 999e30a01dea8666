// Test helper: a checkpointed weight is exactly 0 off its mask, and so are its Adam moments when the
// checkpoint has them (masks never leak, whatever the method).
import { isKept, type Mask } from '@sparse/masks';
import type { CheckpointContent } from '../run/checkpoint.js';

/** Throws naming the first entry of weight `name` off `mask` whose value or moments are not exactly 0. */
export function expectZeroOffMask(cp: CheckpointContent, name: string, mask: Mask, where: string): void {
  const w = cp.params.get(name)!.data;
  const mo = cp.optimizer?.m[name]?.data;
  const vo = cp.optimizer?.v[name]?.data;
  for (let q = 0; q < w.length; q++) {
    if (isKept(mask, q)) continue;
    if (w[q] !== 0 || (mo && mo[q] !== 0) || (vo && vo[q] !== 0)) throw new Error(`${where}: ${name}[${q}] is off the mask but w = ${w[q]}, m = ${mo?.[q]}, v = ${vo?.[q]}`);
  }
}
