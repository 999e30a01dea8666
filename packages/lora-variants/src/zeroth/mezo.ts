// Zeroth-order fine-tuning: MeZO (Malladi et al., "Fine-Tuning Language Models with Just Forward
// Passes") and Sparse MeZO (Liu et al.). One step is SPSA with a seeded direction z ~ N(0, I):
//   L+ = L(θ + εz);  L− = L(θ − εz)   (θ perturbed in place and restored after each)
//   g = (L+ − L−) / (2ε);  θ −= lr · g · z
// z is regenerated from the seed in each of the five passes, never stored: parameters are changed in
// place and the step allocates nothing of parameter size. Sparse MeZO draws z only on masked entries
// (z = 0 elsewhere), so unmasked entries never change.
import { isKept, maskFromIndices, maskSize, validateMask, type Mask } from '@sparse/masks';
import { ArgumentError, Random, ShapeError } from '@sparse/tensor';

/**
 * Per-parameter masks (@sparse/masks' Mask of any shape holding exactly the parameter's entries, read in
 * row-major order): kept entries are perturbed and updated; null means all.
 */
export type MeZOMasks = readonly (Mask | null)[];

/** Throws unless masks holds, per parameter, null or a valid Mask of exactly sizes[i] entries. */
export function checkMeZOMasks(masks: MeZOMasks, sizes: readonly number[], where: string, what: string): void {
  if (!Array.isArray(masks) || masks.length !== sizes.length) throw new ShapeError(`${where}: ${Array.isArray(masks) ? masks.length : typeof masks} masks for ${sizes.length} ${what}`);
  masks.forEach((m, i) => {
    if (m === null) return;
    if (ArrayBuffer.isView(m)) throw new ArgumentError(`${where}: masks[${i}] is a typed array; pass a Mask (maskFromBooleans of @sparse/masks)`);
    validateMask(m, where, `masks[${i}]`);
    if (maskSize(m) !== sizes[i]) throw new ShapeError(`${where}: masks[${i}] has ${maskSize(m)} entries (shape [${m.shape.join(', ')}]), the parameter has ${sizes[i]}`);
  });
}

export interface MeZOStepOptions {
  /** Seed of this step's direction z. */
  seed: number;
  lr: number;
  /** Perturbation scale ε. Default 1e-3 (the paper's). */
  eps?: number;
  /** Sparse MeZO: perturb and update only masked entries. */
  masks?: MeZOMasks;
}

export interface MeZOStepResult {
  lossPlus: number;
  lossMinus: number;
  /** The projected gradient g = (L+ − L−) / (2ε). */
  projectedGrad: number;
  seed: number;
}

export type MeZOLoss = () => number | Promise<number>;

function checkStep(params: readonly Float32Array[], opts: MeZOStepOptions, where: string): { eps: number } {
  const eps = opts.eps ?? 1e-3;
  if (!Number.isSafeInteger(opts.seed)) throw new ArgumentError(`${where}: seed must be a safe integer, got ${opts.seed}`);
  if (!Number.isFinite(opts.lr) || opts.lr < 0) throw new ArgumentError(`${where}: lr must be finite and >= 0, got ${opts.lr}`);
  if (!(eps > 0) || !Number.isFinite(eps)) throw new ArgumentError(`${where}: eps must be finite and > 0, got ${eps}`);
  params.forEach((p, i) => {
    if (!(p instanceof Float32Array)) throw new ArgumentError(`${where}: params[${i}] must be a Float32Array`);
  });
  if (opts.masks !== undefined) checkMeZOMasks(opts.masks, params.map((p) => p.length), where, 'parameters');
  return { eps };
}

/**
 * θ += scale · z in place, z drawn from Random(seed) in parameter order, one normal per (masked) entry.
 * This order is the contract that lets the tfjs form and tests regenerate the same z.
 */
export function addSeededDirection(params: readonly Float32Array[], seed: number, scale: number, masks?: MeZOMasks): void {
  const rng = new Random(seed);
  for (let i = 0; i < params.length; i++) {
    const p = params[i]!;
    const m = masks?.[i] ?? null;
    for (let k = 0; k < p.length; k++) {
      if (m !== null && !isKept(m, k)) continue;
      p[k] = p[k]! + scale * rng.normal();
    }
  }
}

/** One (Sparse) MeZO step on `params` in place; `loss` evaluates the model with the current params. */
export async function mezoStep(params: readonly Float32Array[], loss: MeZOLoss, opts: MeZOStepOptions): Promise<MeZOStepResult> {
  const { eps } = checkStep(params, opts, 'mezoStep');
  const { seed, masks } = opts;
  // A throwing loss leaves the parameters where they started (up to rounding).
  const evalAt = async (offset: number): Promise<number> => {
    addSeededDirection(params, seed, offset, masks);
    try {
      return await loss();
    } finally {
      addSeededDirection(params, seed, -offset, masks);
    }
  };
  const lossPlus = await evalAt(eps);
  const lossMinus = await evalAt(-eps);
  if (!Number.isFinite(lossPlus) || !Number.isFinite(lossMinus)) {
    throw new ArgumentError(`mezoStep: the loss must be a finite number, got L+ = ${lossPlus}, L- = ${lossMinus}`);
  }
  const projectedGrad = (lossPlus - lossMinus) / (2 * eps);
  if (opts.lr !== 0 && projectedGrad !== 0) addSeededDirection(params, seed, -opts.lr * projectedGrad, masks);
  return { lossPlus, lossMinus, projectedGrad, seed };
}

/**
 * Sparse MeZO's mask for one parameter: the `density` (kept fraction) of entries with the smallest |θ| (ties to the
 * lower index), as the paper perturbs small-magnitude weights. A Mask of shape [param.length].
 */
export function smallMagnitudeMask(param: ArrayLike<number>, density: number): Mask {
  if (!(density >= 0 && density <= 1)) throw new ArgumentError(`smallMagnitudeMask: density must be in [0, 1], got ${density}`);
  const n = param.length;
  const k = Math.round(density * n);
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => Math.abs(param[a]!) - Math.abs(param[b]!) || a - b);
  return maskFromIndices([n], order.subarray(0, k));
}

export interface MeZOOptions {
  lr: number;
  eps?: number;
  /** Seed of the stream of per-step seeds. Default 0. */
  seed?: number;
  masks?: MeZOMasks;
  /** Sparse MeZO without given masks: mask each parameter's smallest-|θ| entries, `maskDensity` of them,, chosen once from the initial values. */
  maskDensity?: number;
}

/** A MeZO optimizer over fixed parameter arrays: each step draws its seed from one seeded stream. */
export class MeZO {
  readonly params: readonly Float32Array[];
  readonly opts: Readonly<MeZOOptions>;
  readonly #seeds: Random;
  stepCount = 0;

  constructor(params: readonly Float32Array[], opts: MeZOOptions) {
    if (opts.masks !== undefined && opts.maskDensity !== undefined) throw new ArgumentError('MeZO: give masks or maskDensity, not both');
    const masks = opts.maskDensity !== undefined ? params.map((p) => smallMagnitudeMask(p, opts.maskDensity!)) : opts.masks;
    checkStep(params, { ...opts, masks, seed: opts.seed ?? 0 }, 'MeZO');
    this.params = params;
    this.opts = { ...opts, masks };
    this.#seeds = new Random(opts.seed ?? 0);
  }

  /** One step; its seed is the stream's next 32-bit draw (returned in the result). */
  async step(loss: MeZOLoss): Promise<MeZOStepResult> {
    const seed = this.#seeds.nextUint32();
    const r = await mezoStep(this.params, loss, { seed, lr: this.opts.lr, eps: this.opts.eps, masks: this.opts.masks });
    this.stepCount++;
    return r;
  }
}
