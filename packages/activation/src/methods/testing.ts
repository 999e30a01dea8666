// Test helpers (used by the tests only; not exported by the package): sites, samples and dense references.

import { Random } from '@sparse/tensor';
import type { Site, SiteSample, SiteWeight } from '../types.js';

export function actSite(block: number, features: number): Site {
  return { name: `h.${block}.mlp.act`, kind: 'mlp-activation', block, role: 'mlp.act', features };
}

export function linearSite(name: string, role: string, features: number, out: number, block = 0): Site {
  return { name, kind: 'linear-input', block, role, features, out };
}

/** Normal activations with per-feature scales exp(spread * N(0, 1)), so features differ in size. */
export function normalActs(rng: Random, tokens: number, features: number, spread = 0.5): Float32Array {
  const scale = Float64Array.from({ length: features }, () => Math.exp(spread * rng.normal()));
  return Float32Array.from({ length: tokens * features }, (_, i) => rng.normal() * scale[i % features]!);
}

/** A normal [out, in] weight whose column j is scaled by colScale(j). */
export function weightOf(rng: Random, out: number, inF: number, colScale: (j: number) => number = () => 1): SiteWeight {
  const data = Float32Array.from({ length: out * inF }, (_, k) => rng.normal() * colScale(k % inF) / Math.sqrt(inF));
  return { data, out, in: inF };
}

export function sampleOf(site: Site, x: Float32Array, weight?: SiteWeight): SiteSample {
  return { site, x, tokens: x.length / site.features, ...(weight ? { weight } : {}) };
}

/** y = x Wᵀ in float64, the slow way. */
export function denseProduct(x: ArrayLike<number>, tokens: number, w: SiteWeight): Float64Array {
  const y = new Float64Array(tokens * w.out);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < w.out; o++) {
      let s = 0;
      for (let j = 0; j < w.in; j++) s += x[t * w.in + j]! * w.data[o * w.in + j]!;
      y[t * w.out + o] = s;
    }
  }
  return y;
}

/** ||a - b||² / ||a||². */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += a[i]! ** 2;
  }
  return num / den;
}

export function zeroFraction(x: ArrayLike<number>): number {
  let z = 0;
  for (let i = 0; i < x.length; i++) if (x[i] === 0) z++;
  return z / x.length;
}
