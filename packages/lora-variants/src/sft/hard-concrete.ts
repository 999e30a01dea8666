// The stretched hard-concrete gate of Louizos, Welling & Kingma ("Learning Sparse Neural Networks
// through L0 Regularization"), used by diff pruning (Guo et al.) to learn which entries of a delta to keep.
//   s = σ((log u − log(1 − u) + log α) / β),  u ~ U(0, 1)
//   z = min(1, max(0, s (ζ − γ) + γ))
// The L0 penalty's expectation has a closed form: Σ P(z > 0) = Σ σ(log α − β log(−γ/ζ)).
import { ArgumentError, ShapeError, type Random } from '@sparse/tensor';
import type { SparseDelta } from './delta.js';

export interface HardConcreteOptions {
  /** Temperature β. Default 2/3 (the paper's). */
  beta?: number;
  /** Stretch interval (γ, ζ) with γ < 0 < 1 < ζ. Default (−0.1, 1.1). */
  gamma?: number;
  zeta?: number;
}

export interface HardConcreteParams {
  beta: number;
  gamma: number;
  zeta: number;
}

export function hardConcreteParams(opts: HardConcreteOptions = {}): HardConcreteParams {
  const p = { beta: opts.beta ?? 2 / 3, gamma: opts.gamma ?? -0.1, zeta: opts.zeta ?? 1.1 };
  if (!(p.beta > 0) || !Number.isFinite(p.beta)) throw new ArgumentError(`hard concrete: beta must be > 0, got ${p.beta}`);
  if (!(p.gamma < 0) || !(p.zeta > 1) || !Number.isFinite(p.gamma) || !Number.isFinite(p.zeta)) {
    throw new ArgumentError(`hard concrete: need gamma < 0 and zeta > 1 so the gate reaches exactly 0 and 1, got gamma ${p.gamma}, zeta ${p.zeta}`);
  }
  return p;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/** One stretched hard-concrete gate from a uniform draw u in (0, 1). */
export function hardConcreteFromUniform(logAlpha: number, u: number, p: HardConcreteParams): number {
  const s = sigmoid((Math.log(u) - Math.log(1 - u) + logAlpha) / p.beta);
  return clamp01(s * (p.zeta - p.gamma) + p.gamma);
}

/** Uniform draws in (0, 1) for the gates, one per entry, from `rng` (0 is nudged to the smallest float32 step). */
export function hardConcreteUniforms(n: number, rng: Random): Float32Array {
  const u = rng.fillUniform(new Float32Array(n));
  for (let k = 0; k < n; k++) if (u[k] === 0) u[k] = 2 ** -25;
  return u;
}

/** Samples a gate per entry (training). */
export function sampleHardConcrete(logAlpha: ArrayLike<number>, rng: Random, opts: HardConcreteOptions = {}): Float32Array {
  const p = hardConcreteParams(opts);
  const u = hardConcreteUniforms(logAlpha.length, rng);
  const z = new Float32Array(logAlpha.length);
  for (let k = 0; k < z.length; k++) z[k] = hardConcreteFromUniform(logAlpha[k]!, u[k]!, p);
  return z;
}

/** The deterministic test-time gate: min(1, max(0, σ(log α)(ζ − γ) + γ)). */
export function hardConcreteGate(logAlpha: ArrayLike<number>, opts: HardConcreteOptions = {}): Float32Array {
  const p = hardConcreteParams(opts);
  return Float32Array.from({ length: logAlpha.length }, (_, k) => clamp01(sigmoid(logAlpha[k]!) * (p.zeta - p.gamma) + p.gamma));
}

/** P(z > 0) for one gate: σ(log α − β log(−γ/ζ)). */
export function hardConcreteProbNonzero(logAlpha: number, opts: HardConcreteOptions = {}): number {
  const p = hardConcreteParams(opts);
  return sigmoid(logAlpha - p.beta * Math.log(-p.gamma / p.zeta));
}

/** The expected L0 norm of the gated delta: Σ P(z_k > 0). */
export function expectedL0(logAlpha: ArrayLike<number>, opts: HardConcreteOptions = {}): number {
  const p = hardConcreteParams(opts);
  const shift = p.beta * Math.log(-p.gamma / p.zeta);
  let s = 0;
  for (let k = 0; k < logAlpha.length; k++) s += sigmoid(logAlpha[k]! - shift);
  return s;
}

export interface ExtractDiffOptions extends HardConcreteOptions {
  /** Keep at most this many entries, the largest |gate · value| (Guo et al.'s magnitude projection). */
  maxCount?: number;
}

/**
 * The trained diff as a sparse delta: Δ = ẑ ⊙ w with the deterministic gate ẑ, kept where ẑ · w ≠ 0
 * (closed gates and zero values dropped).
 */
export function extractDiffPruningDelta(shape: readonly [number, number], values: ArrayLike<number>, logAlpha: ArrayLike<number>, opts: ExtractDiffOptions = {}): SparseDelta {
  const size = shape[0] * shape[1];
  if (values.length !== size || logAlpha.length !== size) {
    throw new ShapeError(`extractDiffPruningDelta: shape [${shape.join(', ')}] has ${size} entries, got ${values.length} values and ${logAlpha.length} log_alpha`);
  }
  const gate = hardConcreteGate(logAlpha, opts);
  const gated = new Float32Array(size);
  let nnz = 0;
  for (let k = 0; k < size; k++) {
    gated[k] = gate[k]! * values[k]!;
    if (gated[k] !== 0) nnz++;
  }
  let keep: (k: number) => boolean = (k) => gated[k] !== 0;
  if (opts.maxCount !== undefined) {
    if (!Number.isInteger(opts.maxCount) || opts.maxCount < 0) throw new ArgumentError(`extractDiffPruningDelta: maxCount must be a non-negative integer, got ${opts.maxCount}`);
    if (opts.maxCount < nnz) {
      // The maxCount-th largest |Δ| with ties to the lower index: rank by (|Δ| desc, index asc).
      const order = Int32Array.from({ length: size }, (_, k) => k)
        .filter((k) => gated[k] !== 0)
        .sort((a, b) => Math.abs(gated[b]!) - Math.abs(gated[a]!) || a - b);
      const kept = new Uint8Array(size);
      for (let j = 0; j < opts.maxCount; j++) kept[order[j]!] = 1;
      keep = (k) => kept[k] === 1;
      nnz = opts.maxCount;
    }
  }
  const indices = new Int32Array(nnz);
  const out = new Float32Array(nnz);
  for (let k = 0, j = 0; k < size; k++) {
    if (keep(k)) {
      indices[j] = k;
      out[j++] = gated[k]!;
    }
  }
  return { shape: [shape[0], shape[1]], indices, values: out };
}
