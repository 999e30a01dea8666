// Adam over the values vector of a sparse delta: moments exist only for the active entries, so the
// optimizer state is 2 floats per trained entry instead of 2 per weight.
import { ArgumentError, ShapeError } from '@sparse/tensor';

export interface SparseAdamOptions {
  /** Learning rate. Default 1e-3. */
  lr?: number;
  /** Adam's betas and eps. Defaults 0.9, 0.999, 1e-8 (as maskedAdam and torch.optim.Adam). */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (AdamW) pulling values toward 0, i.e. W + Δ toward W. Default 0. */
  weightDecay?: number;
}

export interface SparseAdamState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

export class SparseAdam {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken; the bias correction is shared by all entries (as a per-tensor step count is in PyTorch). */
  stepCount = 0;
  m: Float32Array;
  v: Float32Array;

  constructor(size: number, opts: SparseAdamOptions = {}) {
    if (!Number.isInteger(size) || size < 0) throw new ArgumentError(`SparseAdam: size must be a non-negative integer, got ${size}`);
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    for (const [k, x, lo, hi] of [['lr', this.lr, 0, Infinity], ['beta1', this.beta1, 0, 1], ['beta2', this.beta2, 0, 1], ['eps', this.eps, 0, Infinity], ['weightDecay', this.weightDecay, 0, Infinity]] as const) {
      if (!(x >= lo && x < hi) || !Number.isFinite(x)) throw new ArgumentError(`SparseAdam: ${k} must be in [${lo}, ${hi}), got ${x}`);
    }
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  get size(): number {
    return this.m.length;
  }

  /** One Adam step on `values` in place, given the gradient of each value; `lr` overrides the constructor's for this step (a schedule). */
  step(values: Float32Array, grads: ArrayLike<number>, lr = this.lr): void {
    if (values.length !== this.m.length || grads.length !== this.m.length) {
      throw new ShapeError(`SparseAdam.step: optimizer has ${this.m.length} entries, got ${values.length} values and ${grads.length} gradients`);
    }
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new ArgumentError(`SparseAdam.step: lr must be finite and >= 0, got ${lr}`);
    const t = ++this.stepCount;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd, m, v } = this;
    const c1 = 1 - b1 ** t;
    const c2 = 1 - b2 ** t;
    for (let k = 0; k < values.length; k++) {
      const g = grads[k]!;
      const mk = (m[k] = b1 * m[k]! + (1 - b1) * g);
      const vk = (v[k] = b2 * v[k]! + (1 - b2) * g * g);
      values[k] = values[k]! - lr * ((mk / c1) / (Math.sqrt(vk / c2) + eps) + wd * values[k]!);
    }
  }

  /**
   * Rebuilds the moments after a reselection: entry k of the new state takes old entry sources[k], or
   * starts from zero where sources[k] is -1 (a newly grown entry).
   */
  remap(sources: Int32Array): void {
    const m = new Float32Array(sources.length);
    const v = new Float32Array(sources.length);
    for (let k = 0; k < sources.length; k++) {
      const s = sources[k]!;
      if (s === -1) continue;
      if (s < 0 || s >= this.m.length) throw new ArgumentError(`SparseAdam.remap: sources[${k}] = ${s} is outside [0, ${this.m.length})`);
      m[k] = this.m[s]!;
      v[k] = this.v[s]!;
    }
    this.m = m;
    this.v = v;
  }

  /** Bytes held by the moments. */
  get byteLength(): number {
    return this.m.byteLength + this.v.byteLength;
  }

  state(): SparseAdamState {
    return { step: this.stepCount, m: this.m.slice(), v: this.v.slice() };
  }

  /** Restores a state() exactly (copies it); the entry count may differ from the current one (after a reselection). */
  load(state: SparseAdamState, where = 'SparseAdam.load'): void {
    if (!Number.isInteger(state?.step) || state.step < 0) throw new ArgumentError(`${where}: step must be a non-negative integer, got ${String(state?.step)}`);
    if (!(state.m instanceof Float32Array) || !(state.v instanceof Float32Array)) throw new ArgumentError(`${where}: m and v must be Float32Arrays`);
    if (state.m.length !== state.v.length) throw new ShapeError(`${where}: m has ${state.m.length} entries, v has ${state.v.length}`);
    this.stepCount = state.step;
    this.m = state.m.slice();
    this.v = state.v.slice();
  }
}
