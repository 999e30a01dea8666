// TopK (k-sparse) sparse autoencoders on activations, on plain arrays: z = TopK(W_enc (x - b_pre) + b_enc)
// keeps exactly k latents per token, x̂ = W_dec z + b_pre. Dead-latent tracking and the AuxK loss (the
// residual x - x̂ reconstructed from the top dead latents) keep latents from dying during training; the
// tfjs subpath trains one (trainSAE). Everything here is also the reference the training is tested against.

import { ArgumentError, Random, ShapeError } from '@sparse/tensor';
import { z } from 'zod';
import { markTopK } from '../methods/common.js';

/** The autoencoder's shape and its initialization. */
export const saeConfigSchema = z.strictObject({
  /** Number of latents (dictionary size). */
  latents: z.int().min(1),
  /** Latents kept per token. */
  k: z.int().min(1),
  /**
   * What the kept pre-activations go through: 'none' keeps them as they are (the k-sparse autoencoder with
   * a linear activation); 'relu' zeroes the negative ones, so a token may use fewer than k latents.
   */
  activation: z.enum(['none', 'relu']).default('none'),
  /** b_pre's initial value: the coordinate-wise median or mean of the data, or zero. */
  bPreInit: z.enum(['median', 'mean', 'zero']).default('median'),
  /** Seed of the decoder's random initial directions. */
  seed: z.int().default(0),
});

export type SAEConfig = z.output<typeof saeConfigSchema>;
export type SAEConfigInput = z.input<typeof saeConfigSchema>;

/** A TopK sparse autoencoder. Matrices are row-major. */
export interface TopKSAE {
  features: number;
  latents: number;
  k: number;
  activation: 'none' | 'relu';
  /** [latents, features]. */
  wEnc: Float32Array;
  /** [latents]. */
  bEnc: Float32Array;
  /** [features, latents]: column i is latent i's direction (unit norm after every training step). */
  wDec: Float32Array;
  /** [features]. */
  bPre: Float32Array;
}

/** The latents of `tokens` tokens: k per token, indices [tokens, k] (in index order) and their values. */
export interface SparseCode {
  tokens: number;
  k: number;
  indices: Int32Array;
  values: Float32Array;
}

function checkRows(where: string, x: ArrayLike<number>, tokens: number, features: number): void {
  if (!Number.isInteger(tokens) || tokens < 0) throw new ArgumentError(`${where}: tokens must be a non-negative integer, got ${tokens}`);
  if (x.length !== tokens * features) throw new ShapeError(`${where}: x has ${x.length} values, expected ${tokens} tokens x ${features} features`);
}

function median(values: Float64Array): number {
  const s = values.slice().sort();
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Scales every column of W_dec [features, latents] to unit norm (a zero column is left as it is). */
export function normalizeDecoderColumns(wDec: Float32Array, features: number, latents: number): void {
  for (let j = 0; j < latents; j++) {
    let s = 0;
    for (let i = 0; i < features; i++) s += wDec[i * latents + j]! ** 2;
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let i = 0; i < features; i++) wDec[i * latents + j]! *= inv;
  }
}

/**
 * A new autoencoder for `features`-wide activations: decoder columns are random unit directions, the encoder
 * is tied to them (W_enc = W_decᵀ), b_enc = 0, and b_pre is the data's median or mean (`data` [tokens,
 * features]; required unless bPreInit is 'zero').
 */
export function initSAE(features: number, config: SAEConfigInput, data?: { x: ArrayLike<number>; tokens: number }): TopKSAE {
  const c = saeConfigSchema.parse(config);
  if (!Number.isInteger(features) || features < 1) throw new ArgumentError(`initSAE: features must be a positive integer, got ${features}`);
  if (c.k > c.latents) throw new ArgumentError(`initSAE: k = ${c.k} exceeds latents = ${c.latents}`);
  const { latents } = c;
  const wDec = new Random(c.seed).fillNormal(new Float32Array(features * latents));
  normalizeDecoderColumns(wDec, features, latents);
  const wEnc = new Float32Array(latents * features);
  for (let i = 0; i < features; i++) for (let j = 0; j < latents; j++) wEnc[j * features + i] = wDec[i * latents + j]!;
  const bPre = new Float32Array(features);
  if (c.bPreInit !== 'zero') {
    if (data === undefined || data.tokens < 1) throw new ArgumentError(`initSAE: bPreInit '${c.bPreInit}' needs data (at least one token)`);
    checkRows('initSAE', data.x, data.tokens, features);
    const col = new Float64Array(data.tokens);
    for (let i = 0; i < features; i++) {
      for (let t = 0; t < data.tokens; t++) col[t] = data.x[t * features + i]!;
      bPre[i] = c.bPreInit === 'median' ? median(col) : col.reduce((s, v) => s + v, 0) / data.tokens;
    }
  }
  return { features, latents, k: c.k, activation: c.activation, wEnc, bEnc: new Float32Array(latents), wDec, bPre };
}

/** Pre-activations W_enc (x - b_pre) + b_enc, [tokens, latents], in float64. */
export function saePreActivations(sae: TopKSAE, x: ArrayLike<number>, tokens: number): Float64Array {
  checkRows('saePreActivations', x, tokens, sae.features);
  const { features, latents, wEnc, bEnc, bPre } = sae;
  const out = new Float64Array(tokens * latents);
  const centered = new Float64Array(features);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < features; i++) centered[i] = x[t * features + i]! - bPre[i]!;
    for (let j = 0; j < latents; j++) {
      let s = bEnc[j]!;
      for (let i = 0; i < features; i++) s += wEnc[j * features + i]! * centered[i]!;
      out[t * latents + j] = s;
    }
  }
  return out;
}

/** k largest entries of each row of pre [tokens, n] among those with allowed[j] = 1 (all when absent). */
function topCode(pre: Float64Array, tokens: number, n: number, k: number, relu: boolean, allowed?: Uint8Array): SparseCode {
  const indices = new Int32Array(tokens * k);
  const values = new Float32Array(tokens * k);
  const marks = new Uint8Array(n);
  const scratch = new Float64Array(n);
  const row = new Float64Array(n);
  for (let t = 0; t < tokens; t++) {
    marks.fill(0);
    for (let j = 0; j < n; j++) row[j] = allowed === undefined || allowed[j] === 1 ? pre[t * n + j]! : -Infinity;
    markTopK(row, 0, n, k, marks, scratch);
    let p = t * k;
    for (let j = 0; j < n; j++) {
      if (marks[j] !== 1) continue;
      const v = pre[t * n + j]!;
      indices[p] = j;
      values[p++] = relu && v < 0 ? 0 : v;
    }
  }
  return { tokens, k, indices, values };
}

/** The sparse code: the k latents of largest pre-activation per token (equal ones: the lower index). */
export function encodeSAE(sae: TopKSAE, x: ArrayLike<number>, tokens: number): SparseCode {
  return topCode(saePreActivations(sae, x, tokens), tokens, sae.latents, sae.k, sae.activation === 'relu');
}

/** W_dec z (+ b_pre unless `withBias` is false), [tokens, features]. */
export function decodeSAE(sae: TopKSAE, code: SparseCode, withBias = true): Float32Array {
  const { features, latents, wDec, bPre } = sae;
  const out = new Float32Array(code.tokens * features);
  const acc = new Float64Array(features);
  for (let t = 0; t < code.tokens; t++) {
    for (let i = 0; i < features; i++) acc[i] = withBias ? bPre[i]! : 0;
    for (let p = t * code.k; p < (t + 1) * code.k; p++) {
      const j = code.indices[p]!;
      const v = code.values[p]!;
      if (v === 0) continue;
      for (let i = 0; i < features; i++) acc[i] += wDec[i * latents + j]! * v;
    }
    out.set(acc, t * features);
  }
  return out;
}

/** The dense latents [tokens, latents] of a code. */
export function denseLatents(code: SparseCode, latents: number): Float32Array {
  const z = new Float32Array(code.tokens * latents);
  for (let t = 0; t < code.tokens; t++) for (let p = t * code.k; p < (t + 1) * code.k; p++) z[t * latents + code.indices[p]!] = code.values[p]!;
  return z;
}

/** Mean squared error over every entry. */
export function meanSquaredError(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new ShapeError(`meanSquaredError: ${x.length} vs ${y.length} values`);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i]! - y[i]!) ** 2;
  return x.length === 0 ? 0 : s / x.length;
}

/** Σ‖x_t - x̂_t‖² / Σ‖x_t - mean(x)‖²: the error relative to always predicting the data mean. */
export function normalizedMSE(x: ArrayLike<number>, xHat: ArrayLike<number>, tokens: number, features: number): number {
  checkRows('normalizedMSE', x, tokens, features);
  checkRows('normalizedMSE', xHat, tokens, features);
  const mean = new Float64Array(features);
  for (let t = 0; t < tokens; t++) for (let i = 0; i < features; i++) mean[i] += x[t * features + i]! / tokens;
  let err = 0;
  let base = 0;
  for (let p = 0; p < x.length; p++) {
    err += (x[p]! - xHat[p]!) ** 2;
    base += (x[p]! - mean[p % features]!) ** 2;
  }
  return base === 0 ? (err === 0 ? 0 : Infinity) : err / base;
}

/**
 * Tokens since each latent last fired (was among a token's kept latents with a non-zero value), updated
 * batch by batch; a latent is dead once it has not fired in the last `deadAfter` tokens.
 */
export class DeadLatentTracker {
  readonly sinceFired: Float64Array;

  constructor(
    readonly latents: number,
    readonly deadAfter: number,
  ) {
    if (!Number.isInteger(latents) || latents < 1) throw new ArgumentError(`DeadLatentTracker: latents must be a positive integer, got ${latents}`);
    if (!Number.isInteger(deadAfter) || deadAfter < 1) throw new ArgumentError(`DeadLatentTracker: deadAfter must be a positive integer, got ${deadAfter}`);
    this.sinceFired = new Float64Array(latents);
  }

  /** Counts a batch: a latent that fired gets the tokens after its last firing; the others the batch length. */
  update(code: SparseCode): void {
    const last = new Int32Array(this.latents).fill(-1);
    for (let t = 0; t < code.tokens; t++) {
      for (let p = t * code.k; p < (t + 1) * code.k; p++) {
        const j = code.indices[p]!;
        if (j < 0 || j >= this.latents) throw new ArgumentError(`DeadLatentTracker: latent index ${j} out of range [0, ${this.latents})`);
        if (code.values[p] !== 0) last[j] = t;
      }
    }
    for (let j = 0; j < this.latents; j++) this.sinceFired[j] = last[j]! < 0 ? this.sinceFired[j]! + code.tokens : code.tokens - 1 - last[j]!;
  }

  /** 1 for each dead latent. */
  dead(): Uint8Array {
    return Uint8Array.from(this.sinceFired, (s) => (s >= this.deadAfter ? 1 : 0));
  }

  deadCount(): number {
    let n = 0;
    for (const s of this.sinceFired) if (s >= this.deadAfter) n++;
    return n;
  }

  state(): { latents: number; deadAfter: number; sinceFired: number[] } {
    return { latents: this.latents, deadAfter: this.deadAfter, sinceFired: Array.from(this.sinceFired) };
  }

  static fromState(state: { latents: number; deadAfter: number; sinceFired: number[] }): DeadLatentTracker {
    const t = new DeadLatentTracker(state.latents, state.deadAfter);
    if (!Array.isArray(state.sinceFired) || state.sinceFired.length !== state.latents) throw new ShapeError(`DeadLatentTracker.fromState: sinceFired must have ${state.latents} entries`);
    t.sinceFired.set(state.sinceFired);
    return t;
  }
}

/**
 * The AuxK loss of a batch: the residual e = x - x̂ reconstructed from the `auxK` dead latents of largest
 * pre-activation per token (all dead latents when fewer; through the same activation), ê = W_dec z_aux with no
 * b_pre; the loss is auxCoef · mean over entries of (e - ê)². 0 when no latent is dead or auxK is 0.
 */
export function auxKLoss(sae: TopKSAE, x: ArrayLike<number>, tokens: number, dead: Uint8Array, auxK: number, auxCoef: number): number {
  checkRows('auxKLoss', x, tokens, sae.features);
  if (dead.length !== sae.latents) throw new ShapeError(`auxKLoss: dead has ${dead.length} entries, expected ${sae.latents}`);
  const nDead = dead.reduce((s, v) => s + v, 0);
  const k = Math.min(auxK, nDead);
  if (k === 0 || tokens === 0) return 0;
  const pre = saePreActivations(sae, x, tokens);
  const relu = sae.activation === 'relu';
  const xHat = decodeSAE(sae, topCode(pre, tokens, sae.latents, sae.k, relu));
  const eHat = decodeSAE(sae, topCode(pre, tokens, sae.latents, k, relu, dead), false);
  let s = 0;
  for (let p = 0; p < x.length; p++) s += (x[p]! - xHat[p]! - eHat[p]!) ** 2;
  return (auxCoef * s) / x.length;
}
