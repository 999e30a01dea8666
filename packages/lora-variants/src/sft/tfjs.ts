// Sparse fine-tuning and diff pruning on tfjs variables. The frozen weights W stay tf.Variables; the
// SFT delta stays on the host as indices + values with its sparse Adam, and effectiveWeight scatters
// it into W + Δ for the forward pass. Gradients come from the dense gradient of W + Δ, which tfjs's
// backward pass produces anyway: its support entries drive Adam, all entries feed regrowth.
import { maskIndices, validateMask, type Mask } from '@sparse/masks';
import { ArgumentError, Random, ShapeError, type RandomState } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { SparseAdam, type SparseAdamOptions, type SparseAdamState } from './adam.js';
import { gatherAtSupport, sparseDelta, validateSparseDelta, type SparseDelta } from './delta.js';
import { extractDiffPruningDelta, hardConcreteParams, hardConcreteUniforms, type ExtractDiffOptions, type HardConcreteOptions } from './hard-concrete.js';
import { reselectSupport, randomSupport } from './reselect.js';

export interface SparseRegrowOptions {
  /** Reselect after every `every` steps. */
  every: number;
  /** Fraction of each layer's active entries dropped and regrown per reselection. */
  fraction: number;
  /** Gradients of the last `accumulate` steps before a reselection are summed for regrowth (default `every`). The dense accumulator exists only in that window. */
  accumulate?: number;
}

export interface SparseFineTunerOptions {
  /** Fraction of each weight's entries trained; the initial support is drawn at random (SpIEL's start). */
  density?: number;
  /**
   * Initial supports by weight name: a Mask of the weight's shape (kept entries train), or their flat
   * row-major indices. These layers ignore `density`.
   */
  supports?: Record<string, Mask | ArrayLike<number>>;
  /** Seed of the random supports (each layer forks its own stream by name). Default 0. */
  seed?: number;
  adam?: SparseAdamOptions;
  regrow?: SparseRegrowOptions;
}

export interface SparseStepOptions {
  /** Learning rate of this step instead of the Adam option's (for warmup / decay schedules). */
  lr?: number;
  /**
   * minimize only: the weights that step (IST's sampled layers); the others keep their values and Adam
   * state as if frozen (their gradient is not taken into the step). Default: every weight.
   */
  only?: ReadonlySet<string>;
}

/** One layer's part of SparseFineTuner.state(). */
export interface SparseFineTunerLayerState {
  shape: [number, number];
  /** The current support (sorted flat indices) and the delta's values on it. */
  indices: Int32Array;
  values: Float32Array;
  adam: SparseAdamState;
  /** Gradients summed so far in the current regrowth window (null outside one). */
  accumulated: Float32Array | null;
}

/** Everything a SparseFineTuner changes while training; W itself is the caller's (frozen) weights. */
export interface SparseFineTunerState {
  stepCount: number;
  layers: Record<string, SparseFineTunerLayerState>;
}

interface SFTLayer {
  delta: SparseDelta;
  adam: SparseAdam;
  /** [nnz, 1] int32 flat indices for scatterND, rebuilt on reselection. */
  scatterIndices: tf.Tensor;
  accumulated: Float32Array | null;
}

function checkWeight(name: string, w: tf.Variable, where: string): void {
  if (w.rank !== 2 || w.dtype !== 'float32') throw new ArgumentError(`${where}: weight '${name}' must be a float32 matrix [out, in], got ${w.dtype} [${w.shape.join(', ')}]`);
}

function denseGrad(g: tf.Tensor | Float32Array, size: number, name: string, where: string): Float32Array {
  const data = g instanceof Float32Array ? g : (g.dataSync() as Float32Array);
  if (data.length !== size) throw new ShapeError(`${where}: gradient of '${name}' has ${data.length} entries, the weight has ${size}`);
  return data;
}

/** The flat indices a support Mask keeps, after checking that it is a valid Mask of the weight's shape. */
function supportOfMask(mask: Mask, shape: [number, number], name: string, where: string): Int32Array {
  validateMask(mask, where, `supports['${name}']`);
  if (mask.shape.length !== 2 || mask.shape[0] !== shape[0] || mask.shape[1] !== shape[1]) {
    throw new ShapeError(`${where}: supports['${name}'] has shape [${mask.shape.join(', ')}], the weight is [${shape.join(', ')}]`);
  }
  return maskIndices(mask);
}

/**
 * Sparse fine-tuning of frozen tf.Variables: per weight a sparse delta (indices + values), a sparse Adam
 * over its values, and optional SpIEL drop-and-regrow. Only support entries of W + Δ ever move.
 */
export class SparseFineTuner {
  readonly weights: Readonly<Record<string, tf.Variable>>;
  readonly #layers = new Map<string, SFTLayer>();
  readonly #regrow: SparseRegrowOptions | undefined;
  #merged = false;
  stepCount = 0;

  constructor(weights: Record<string, tf.Variable>, opts: SparseFineTunerOptions = {}) {
    const where = 'SparseFineTuner';
    const root = new Random(opts.seed ?? 0);
    if (opts.density !== undefined && !(opts.density >= 0 && opts.density <= 1)) throw new ArgumentError(`${where}: density must be in [0, 1], got ${opts.density}`);
    for (const n of Object.keys(opts.supports ?? {})) if (!(n in weights)) throw new ArgumentError(`${where}: supports names '${n}', which is not one of the weights (${Object.keys(weights).join(', ')})`);
    const r = opts.regrow;
    if (r !== undefined) {
      if (!Number.isInteger(r.every) || r.every < 1) throw new ArgumentError(`${where}: regrow.every must be a positive integer, got ${r.every}`);
      if (!(r.fraction >= 0 && r.fraction <= 1)) throw new ArgumentError(`${where}: regrow.fraction must be in [0, 1], got ${r.fraction}`);
      const a = r.accumulate ?? r.every;
      if (!Number.isInteger(a) || a < 1 || a > r.every) throw new ArgumentError(`${where}: regrow.accumulate must be an integer in [1, ${r.every}], got ${a}`);
    }
    this.#regrow = r;
    for (const [n, w] of Object.entries(weights)) {
      checkWeight(n, w, where);
      const shape: [number, number] = [w.shape[0]!, w.shape[1]!];
      const given = opts.supports?.[n];
      if (given === undefined && opts.density === undefined) throw new ArgumentError(`${where}: give density or a support for weight '${n}'`);
      const indices = given === undefined ? randomSupport(shape, Math.round(opts.density! * shape[0] * shape[1]), root.fork(n)) : 'bits' in given ? supportOfMask(given, shape, n, where) : given;
      let delta: SparseDelta;
      try {
        delta = sparseDelta(shape, indices);
      } catch (error) {
        throw new ArgumentError(`${where}: support of '${n}': ${(error as Error).message}`, { cause: error });
      }
      this.#layers.set(n, { delta, adam: new SparseAdam(delta.indices.length, opts.adam), scatterIndices: this.#scatter(delta), accumulated: null });
    }
    this.weights = { ...weights };
  }

  #scatter(delta: SparseDelta): tf.Tensor {
    return tf.keep(tf.tensor2d(delta.indices, [delta.indices.length, 1], 'int32'));
  }

  #layer(name: string, where: string): SFTLayer {
    const l = this.#layers.get(name);
    if (l === undefined) throw new ArgumentError(`${where}: no weight named '${name}' (have: ${[...this.#layers.keys()].join(', ')})`);
    return l;
  }

  /** The current delta of a weight (live arrays: copy before keeping them across steps). */
  delta(name: string): SparseDelta {
    return this.#layer(name, 'delta').delta;
  }

  /** A copy of a weight's sparse Adam state (for checkpoints and tests). */
  optimizerState(name: string): SparseAdamState {
    return this.#layer(name, 'optimizerState').adam.state();
  }

  deltas(): Record<string, SparseDelta> {
    return Object.fromEntries([...this.#layers].map(([n, l]) => [n, l.delta]));
  }

  /** W + scale · Δ as a new tensor (scale 1 by default; W itself while merged, since the delta is then inside W). */
  effectiveWeight(name: string, scale = 1): tf.Tensor {
    const l = this.#layer(name, 'effectiveWeight');
    const w = this.weights[name]!;
    if (this.#merged) {
      if (scale !== 1) throw new ArgumentError('SparseFineTuner.effectiveWeight: the deltas are merged; a scaled delta needs them unmerged');
      return w;
    }
    return tf.tidy(() => {
      const size = w.shape[0]! * w.shape[1]!;
      const d = tf.scatterND(l.scatterIndices, tf.tensor1d(scale === 1 ? l.delta.values : l.delta.values.map((v) => v * scale)), [size]);
      return tf.add(w, tf.reshape(d, w.shape));
    });
  }

  /**
   * One step from the dense gradients of W + Δ by weight name (layers without a gradient do not move).
   * `opts.lr` replaces the Adam learning rate for this step (a schedule).
   */
  step(grads: Record<string, tf.Tensor | Float32Array>, opts: SparseStepOptions = {}): void {
    const where = 'SparseFineTuner.step';
    if (this.#merged) throw new ArgumentError(`${where}: the deltas are merged; unmerge first`);
    this.stepCount++;
    const r = this.#regrow;
    // phase 1..every within the current reselection period; the last `accumulate` phases accumulate
    const accumulating = r !== undefined && ((this.stepCount - 1) % r.every) + 1 > r.every - (r.accumulate ?? r.every);
    for (const [n, g] of Object.entries(grads)) {
      const l = this.#layer(n, where);
      const size = l.delta.shape[0] * l.delta.shape[1];
      const dense = denseGrad(g, size, n, where);
      l.adam.step(l.delta.values, gatherAtSupport(dense, l.delta.indices), opts.lr);
      if (accumulating) {
        l.accumulated ??= new Float32Array(size);
        for (let k = 0; k < size; k++) l.accumulated[k] = l.accumulated[k]! + dense[k]!;
      }
    }
    if (r !== undefined && this.stepCount % r.every === 0) this.reselect(r.fraction);
  }

  /**
   * Drop-and-regrow on every layer now, from the gradients accumulated so far (layers with none keep
   * their support). Survivors keep their Adam moments, grown entries start from zero.
   */
  reselect(fraction: number): void {
    for (const l of this.#layers.values()) {
      if (l.accumulated === null) continue;
      const res = reselectSupport(l.delta, l.accumulated, { fraction });
      l.adam.remap(res.sources);
      l.delta = res.delta;
      l.scatterIndices.dispose();
      l.scatterIndices = this.#scatter(res.delta);
      l.accumulated = null;
    }
  }

  /**
   * Computes `loss` on the effective weights, takes the dense gradients of W + Δ and steps. Returns the
   * loss value.
   */
  minimize(loss: (weights: Record<string, tf.Tensor>) => tf.Scalar, opts: SparseStepOptions = {}): number {
    if (this.#merged) throw new ArgumentError('SparseFineTuner.minimize: the deltas are merged; unmerge first');
    const names = [...this.#layers.keys()];
    const eff = names.map((n) => this.effectiveWeight(n));
    const { value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]) => loss(Object.fromEntries(names.map((n, i) => [n, ws[i]!]))))(eff);
    const v = value.dataSync()[0]!;
    const g: Record<string, Float32Array> = {};
    names.forEach((n, i) => {
      if (opts.only === undefined || opts.only.has(n)) g[n] = grads[i]!.dataSync() as Float32Array;
    });
    tf.dispose([value, ...grads, ...eff]);
    this.step(g, opts);
    return v;
  }

  /** A copy of the training state (for checkpoints): tuner.load(state) on a tuner over the same weights continues bit for bit. */
  state(): SparseFineTunerState {
    if (this.#merged) throw new ArgumentError('SparseFineTuner.state: the deltas are merged into the weights; unmerge first');
    const layers: Record<string, SparseFineTunerLayerState> = {};
    for (const [n, l] of this.#layers) {
      layers[n] = { shape: [l.delta.shape[0], l.delta.shape[1]], indices: l.delta.indices.slice(), values: l.delta.values.slice(), adam: l.adam.state(), accumulated: l.accumulated?.slice() ?? null };
    }
    return { stepCount: this.stepCount, layers };
  }

  /**
   * Restores a state() (copied): supports, values, Adam moments, the regrowth window and the step count.
   * The tuner must have the same weight names and shapes and not be merged; its options (regrow, Adam
   * hyperparameters) stay its own. Everything is checked before anything changes.
   */
  load(state: SparseFineTunerState): this {
    const where = 'SparseFineTuner.load';
    if (this.#merged) throw new ArgumentError(`${where}: the deltas are merged; unmerge first`);
    if (!Number.isInteger(state?.stepCount) || state.stepCount < 0) throw new ArgumentError(`${where}: stepCount must be a non-negative integer, got ${String(state?.stepCount)}`);
    const names = Object.keys(state.layers ?? {});
    for (const n of names) if (!this.#layers.has(n)) throw new ArgumentError(`${where}: state has layer '${n}', which is not one of the weights (${[...this.#layers.keys()].join(', ')})`);
    for (const n of this.#layers.keys()) if (!names.includes(n)) throw new ArgumentError(`${where}: state has no layer '${n}'`);
    for (const [n, l] of this.#layers) {
      const s = state.layers[n]!;
      const at = `${where}: layer '${n}'`;
      if (s.shape?.[0] !== l.delta.shape[0] || s.shape?.[1] !== l.delta.shape[1]) throw new ShapeError(`${at}: state shape [${String(s.shape)}], the weight is [${l.delta.shape.join(', ')}]`);
      validateSparseDelta({ shape: s.shape, indices: s.indices, values: s.values }, at);
      if (s.adam?.m?.length !== s.indices.length || s.adam?.v?.length !== s.indices.length) throw new ShapeError(`${at}: Adam moments have ${s.adam?.m?.length}/${s.adam?.v?.length} entries for ${s.indices.length} active ones`);
      const size = l.delta.shape[0] * l.delta.shape[1];
      if (s.accumulated !== null && (!(s.accumulated instanceof Float32Array) || s.accumulated.length !== size)) throw new ShapeError(`${at}: accumulated must be null or a Float32Array of ${size} entries`);
      new SparseAdam(0).load(s.adam, `${at}: adam`);
    }
    for (const [n, l] of this.#layers) {
      const s = state.layers[n]!;
      l.delta = { shape: [s.shape[0], s.shape[1]], indices: s.indices.slice(), values: s.values.slice() };
      l.adam.load(s.adam);
      l.scatterIndices.dispose();
      l.scatterIndices = this.#scatter(l.delta);
      l.accumulated = s.accumulated?.slice() ?? null;
    }
    this.stepCount = state.stepCount;
    return this;
  }

  /** Writes W + Δ into the variables. */
  merge(): this {
    if (this.#merged) throw new ArgumentError('SparseFineTuner.merge: already merged');
    for (const n of this.#layers.keys()) {
      const e = this.effectiveWeight(n);
      this.weights[n]!.assign(e);
      e.dispose();
    }
    this.#merged = true;
    return this;
  }

  /** Takes the deltas back out of the variables. */
  unmerge(): this {
    if (!this.#merged) throw new ArgumentError('SparseFineTuner.unmerge: nothing is merged');
    for (const [n, l] of this.#layers) {
      const w = this.weights[n]!;
      const size = w.shape[0]! * w.shape[1]!;
      const next = tf.tidy(() => tf.sub(w, tf.reshape(tf.scatterND(l.scatterIndices, tf.tensor1d(l.delta.values), [size]), w.shape)));
      w.assign(next);
      next.dispose();
    }
    this.#merged = false;
    return this;
  }

  /** Trainable scalars per layer (active entries) and in all. */
  trainableCount(): number {
    let s = 0;
    for (const l of this.#layers.values()) s += l.delta.indices.length;
    return s;
  }

  /** Host bytes of the trainable state: indices + values + Adam moments (+ any live regrowth accumulator). */
  stateByteLength(): number {
    let s = 0;
    for (const l of this.#layers.values()) s += l.delta.indices.byteLength + l.delta.values.byteLength + l.adam.byteLength + (l.accumulated?.byteLength ?? 0);
    return s;
  }

  dispose(): void {
    for (const l of this.#layers.values()) l.scatterIndices.dispose();
  }
}

export interface DiffPruningLayerState {
  values: Float32Array;
  logAlpha: Float32Array;
  rng: RandomState;
}

export interface DiffPruningState {
  layers: Record<string, DiffPruningLayerState>;
}

export interface DiffPruningOptions extends HardConcreteOptions {
  /** Initial log α of every gate. Default 0 (P(z > 0) ≈ 0.83 with the default β, γ, ζ). */
  initLogAlpha?: number;
  /** Seed of the gate noise (each layer forks its own stream by name). Default 0. */
  seed?: number;
}

/**
 * Diff pruning (Guo et al.): a dense trainable diff w and a hard-concrete gate log α per entry,
 * ΔW = z ⊙ w. Train w and log α (trainableVariables) with loss + λ · penalty(); extract() gives the
 * final sparse delta from the deterministic gates.
 */
export class DiffPruning {
  readonly weights: Readonly<Record<string, tf.Variable>>;
  readonly values: Readonly<Record<string, tf.Variable>>;
  readonly logAlpha: Readonly<Record<string, tf.Variable>>;
  /** Sampled gates when true, the deterministic gate when false. */
  training = true;
  readonly #opts: HardConcreteOptions;
  readonly #rngs = new Map<string, Random>();

  constructor(weights: Record<string, tf.Variable>, opts: DiffPruningOptions = {}) {
    hardConcreteParams(opts);
    const init = opts.initLogAlpha ?? 0;
    if (!Number.isFinite(init)) throw new ArgumentError(`DiffPruning: initLogAlpha must be finite, got ${init}`);
    const root = new Random(opts.seed ?? 0);
    const values: Record<string, tf.Variable> = {};
    const logAlpha: Record<string, tf.Variable> = {};
    for (const [n, w] of Object.entries(weights)) {
      checkWeight(n, w, 'DiffPruning');
      values[n] = tf.variable(tf.zeros(w.shape), true);
      logAlpha[n] = tf.variable(tf.fill(w.shape, init), true);
      this.#rngs.set(n, root.fork(n));
    }
    this.weights = { ...weights };
    this.values = values;
    this.logAlpha = logAlpha;
    this.#opts = { beta: opts.beta, gamma: opts.gamma, zeta: opts.zeta };
  }

  trainableVariables(): tf.Variable[] {
    return [...Object.values(this.values), ...Object.values(this.logAlpha)];
  }

  #name(name: string, where: string): void {
    if (!(name in this.weights)) throw new ArgumentError(`${where}: no weight named '${name}' (have: ${Object.keys(this.weights).join(', ')})`);
  }

  /** The gate of a weight: a fresh hard-concrete sample per call when training, else deterministic. Differentiable in log α. */
  gate(name: string): tf.Tensor {
    this.#name(name, 'DiffPruning.gate');
    const p = hardConcreteParams(this.#opts);
    const la = this.logAlpha[name]!;
    return tf.tidy(() => {
      let pre: tf.Tensor = la;
      if (this.training) {
        const u = tf.tensor(hardConcreteUniforms(la.size, this.#rngs.get(name)!), la.shape);
        pre = tf.div(tf.add(tf.sub(tf.log(u), tf.log1p(tf.neg(u))), la), p.beta);
      }
      return tf.clipByValue(tf.add(tf.mul(tf.sigmoid(pre), p.zeta - p.gamma), p.gamma), 0, 1);
    });
  }

  /** W + z ⊙ w. */
  effectiveWeight(name: string): tf.Tensor {
    this.#name(name, 'DiffPruning.effectiveWeight');
    return tf.tidy(() => tf.add(this.weights[name]!, tf.mul(this.gate(name), this.values[name]!)));
  }

  /** Expected L0 norm of all diffs, Σ σ(log α − β log(−γ/ζ)), differentiable. */
  penalty(): tf.Scalar {
    const p = hardConcreteParams(this.#opts);
    const shift = p.beta * Math.log(-p.gamma / p.zeta);
    return tf.tidy(() => tf.addN(Object.values(this.logAlpha).map((la) => tf.sum(tf.sigmoid(tf.sub(la, shift))))) as tf.Scalar);
  }

  /** Values, log α and each layer's gate-noise stream: what a checkpoint needs to continue exactly (arrays are copies). */
  state(): DiffPruningState {
    const layers: Record<string, DiffPruningLayerState> = {};
    for (const n of Object.keys(this.weights)) {
      layers[n] = {
        values: Float32Array.from(this.values[n]!.dataSync() as Float32Array),
        logAlpha: Float32Array.from(this.logAlpha[n]!.dataSync() as Float32Array),
        rng: this.#rngs.get(n)!.state(),
      };
    }
    return { layers };
  }

  /** Restores state() taken on a DiffPruning over the same weights. */
  load(state: DiffPruningState): void {
    for (const n of Object.keys(this.weights)) {
      const l = state.layers[n];
      if (l === undefined) throw new ArgumentError(`DiffPruning.load: the state has no layer '${n}' (has: ${Object.keys(state.layers).join(', ')})`);
      const size = this.values[n]!.size;
      if (l.values.length !== size || l.logAlpha.length !== size) throw new ShapeError(`DiffPruning.load: layer '${n}' has ${size} entries, the state ${l.values.length} values and ${l.logAlpha.length} log_alpha`);
      this.values[n]!.assign(tf.tensor(Float32Array.from(l.values), this.values[n]!.shape));
      this.logAlpha[n]!.assign(tf.tensor(Float32Array.from(l.logAlpha), this.logAlpha[n]!.shape));
      this.#rngs.set(n, Random.fromState(l.rng));
    }
  }

  /** The trained diffs as sparse deltas (deterministic gate, nonzero entries of ẑ ⊙ w; with `density`, each weight's largest |ẑ ⊙ w| up to that fraction). */
  extract(opts: Omit<ExtractDiffOptions, keyof HardConcreteOptions> & { density?: number } = {}): Record<string, SparseDelta> {
    const { density, ...rest } = opts;
    if (density !== undefined && !(density > 0 && density <= 1)) throw new ArgumentError(`DiffPruning.extract: density must be in (0, 1], got ${String(density)}`);
    const out: Record<string, SparseDelta> = {};
    for (const [n, w] of Object.entries(this.weights)) {
      const [rows, cols] = [w.shape[0]!, w.shape[1]!];
      // density: each weight keeps at most round(density · its size) entries (at least 1)
      const cut = density !== undefined ? { maxCount: Math.max(1, Math.round(density * rows * cols)) } : {};
      out[n] = extractDiffPruningDelta([rows, cols], this.values[n]!.dataSync(), this.logAlpha[n]!.dataSync(), { ...this.#opts, ...rest, ...cut });
    }
    return out;
  }

  dispose(): void {
    tf.dispose(this.trainableVariables());
  }
}
