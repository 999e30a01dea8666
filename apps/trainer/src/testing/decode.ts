// Test helper for the decoder tests: model values drawn large enough that logits and routing differ clearly
// (the default initialization keeps logits near uniform, where comparisons would say little).
import { Random } from '@sparse/tensor';
import { paramShapes } from '../model/index.js';
import type { ModelSpec } from '../model/types.js';

/** Random values for every parameter of `spec`, seeded. */
export function decoderTestValues(spec: ModelSpec, seed: number): Map<string, Float32Array> {
  const rng = new Random(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of paramShapes(spec)) {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    if (shape.length === 2) rng.fillNormal(a, 0, name.includes('embed') || name.startsWith('w') || name.startsWith('lm_head') ? 1 : 1 / Math.sqrt(shape[1]!));
    else if (name.includes('norm') || name.includes('ln_')) rng.fillNormal(a, name.endsWith('bias') ? 0 : 1, 0.2);
    else rng.fillNormal(a, 0, 0.2);
    out.set(name, a);
  }
  return out;
}
