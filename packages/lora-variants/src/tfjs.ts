// Trainable adapters on tfjs variables. attachAdapters wraps a model's named weights (W [out, in] as
// tf.Variables); each adapter adds trainable tf.Variables per targeted layer, and effectiveWeight(name)
// gives W + ΔW as a differentiable tf.Tensor for the forward pass. On a masked base every ΔW goes
// through the mask (so training already sees the merged weight); merges go through the core variants, so they keep the
// base mask bit-exactly unless `densify` is asked for. The application registers tfjs's gradients and
// backend (import '@tensorflow/tfjs-core/dist/register_all_gradients' and a backend) before training.
import { maskFromTensor, type Mask } from '@sparse/masks';
import { ArgumentError, Random, ShapeError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { getTfForm, listTfForms } from './tfjs-forms/index.js';
import { getVariant } from './variants/registry.js';
import { losiaRelocalize } from './variants/losia/variant.js';
import type { LosiaConfig } from './variants/losia/config.js';
import type { IndexedAdapterState, ScoredAdapterVariant } from './variants/shared/sparse.js';
import { mosaDrawCount, setMosaDrawCount } from './variants/mosa/tfjs.js';
import type { AdapterState, AdapterVariant } from './variants/types.js';

export type TargetPattern = string | RegExp | readonly string[] | ((name: string) => boolean);

export interface AdapterOptions {
  /** Which weights get the adapter: exact names or name suffixes after a '.', a RegExp, or a predicate. */
  targets: TargetPattern;
  /** A registered variant with a tfjs form: 'lora', 'sqft' or 'spp'. */
  variant: string;
  config?: unknown;
  /** Seed of the initialization (each layer forks its own stream by name). Default 0. */
  seed?: number;
  /** Base masks by weight name; default: each base's nonzeros at attach time. */
  masks?: Record<string, Mask>;
  /**
   * Train and merge ΔW everywhere, filling the base's zeros (the sparsity pattern is dropped). Off by
   * default: on a masked base the forward pass trains W + ΔW ⊙ M, the function the merge writes.
   */
  densify?: boolean;
  /** Extra config fields for one layer (data-aware inits: CorDA's covariance, LoRA-SB's gradient), merged over `config`. */
  layerConfig?: (name: string) => Record<string, unknown> | undefined;
  /**
   * A score matrix [out, in] for one layer (e.g. accumulated squared gradients): variants that choose a
   * support (rosa, smt, losia, s2ft, dsee, sara, sparse-adapter) select from it through `initWithScores`
   * instead of their data-free rule. undefined for a layer: that layer uses the data-free rule.
   */
  scores?: (name: string) => Tensor | tf.Tensor | undefined;
}

export interface TrainableReport {
  adapter: string;
  layers: { name: string; trainable: number }[];
  trainable: number;
  /** Scalars in all wrapped weights (frozen). */
  base: number;
  /** trainable / base. */
  fraction: number;
}

interface LayerAdapter {
  state: AdapterState;
  vars: Record<string, tf.Variable>;
}
interface NamedAdapter {
  variant: string;
  densify: boolean;
  layers: Map<string, LayerAdapter>;
}
/** A layer's mask as the forward pass uses it; `full`: nothing pruned (no projection needed). */
interface LayerMask {
  mask: Mask;
  tensor: tf.Tensor;
  keep: tf.Tensor;
  full: boolean;
  ones?: tf.Tensor;
}

export { getTfForm, listTfForms, registerTfForm } from './tfjs-forms/index.js';
export type { TfAdapterForm, TfFormContext } from './tfjs-forms/index.js';

function matcher(t: TargetPattern): (name: string) => boolean {
  if (typeof t === 'function') return t;
  if (t instanceof RegExp) return (n) => t.test(n);
  const list = typeof t === 'string' ? [t] : t;
  // PEFT's rule: a target matches the full name or its tail after a '.'.
  return (n) => list.some((x) => n === x || n.endsWith(`.${x}`));
}

function toCore(v: tf.Tensor): Float32Tensor {
  return tensor(Float32Array.from(v.dataSync() as Float32Array), v.shape);
}

/** A layer's scores as a core tensor, refused (naming the layer and both shapes) unless [out, in]. */
function checkScores(name: string, scores: Tensor | tf.Tensor, [out, inp]: readonly number[], op: string): Tensor {
  const s = scores instanceof tf.Tensor ? toCore(scores) : scores;
  if (s.shape.length !== 2 || s.shape[0] !== out || s.shape[1] !== inp) {
    throw new ShapeError(`${op}: layer '${name}': scores are [${s.shape.join(', ')}] but the weight is [${out}, ${inp}]`);
  }
  return s;
}

/** `variant.initWithScores` for layer `name`, with the scores' shape checked against the weight first. */
function initScored(variant: AdapterVariant, name: string, base: Float32Tensor, config: unknown, rng: Random, scores: Tensor | tf.Tensor): AdapterState {
  const init = (variant as Partial<ScoredAdapterVariant<unknown>>).initWithScores;
  if (typeof init !== 'function') throw new ArgumentError(`addAdapter: layer '${name}': variant '${variant.name}' takes no scores (its selection has no score matrix)`);
  const s = checkScores(name, scores, base.shape, 'addAdapter');
  try {
    return init.call(variant, base, config, rng, s);
  } catch (err) {
    // the core names the variant; add the layer
    if (err instanceof ArgumentError) throw new ArgumentError(`addAdapter: layer '${name}': ${err.message}`, { cause: err });
    throw err;
  }
}

export class AdapterModel {
  readonly weights: Readonly<Record<string, tf.Variable>>;
  readonly #adapters = new Map<string, NamedAdapter>();
  readonly #masks = new Map<string, LayerMask>();
  #active: string | null = null;
  /** Whether effectiveWeight is for a training step (forms with dropout-like behaviour read it). */
  training = true;
  #enabled = true;
  /** The adapter currently merged into the weights, if any, and the masks its merge replaced (maskAfterMerge). */
  #merged: { name: string; densify: boolean; replaced: Map<string, Mask> } | null = null;

  /** The layers' biases [out] by weight name (a weight without an entry has no bias). */
  readonly biases: Readonly<Record<string, tf.Variable>>;

  constructor(weights: Record<string, tf.Variable>, opts: { biases?: Record<string, tf.Variable> } = {}) {
    for (const [n, w] of Object.entries(weights)) {
      if (w.rank !== 2 || w.dtype !== 'float32') throw new ArgumentError(`attachAdapters: weight '${n}' must be a float32 matrix [out, in], got ${w.dtype} [${w.shape.join(', ')}]`);
    }
    for (const [n, b] of Object.entries(opts.biases ?? {})) {
      const w = weights[n];
      if (w === undefined) throw new ArgumentError(`attachAdapters: bias '${n}' has no weight of that name`);
      if (b.rank !== 1 || b.dtype !== 'float32' || b.shape[0] !== w.shape[0]) {
        throw new ArgumentError(`attachAdapters: bias '${n}' must be a float32 vector [${w.shape[0]}], got ${b.dtype} [${b.shape.join(', ')}]`);
      }
    }
    this.weights = { ...weights };
    this.biases = { ...(opts.biases ?? {}) };
  }

  /** Adds a named adapter on the matching weights and makes it the active one. */
  addAdapter(adapterName: string, opts: AdapterOptions): this {
    if (this.#adapters.has(adapterName)) throw new ArgumentError(`addAdapter: an adapter named '${adapterName}' exists already`);
    const variant = getVariant(opts.variant);
    const form = getTfForm(variant.name);
    if (form === undefined) throw new ArgumentError(`addAdapter: variant '${variant.name}' has no tfjs form (${listTfForms().join(', ')} do)`);
    const config = variant.parseConfig(opts.config ?? {});
    // training here adds ΔW to the weight (effectiveWeight), so input dropout on the adapter path has no place to act
    if ((config as { dropout?: number }).dropout) {
      throw new ArgumentError(`addAdapter: dropout ${(config as { dropout?: number }).dropout} is not supported when training through effectiveWeight; set dropout: 0 (it is kept in PEFT files as lora_dropout)`);
    }
    const match = matcher(opts.targets);
    const names = Object.keys(this.weights).filter(match);
    if (names.length === 0) throw new ArgumentError(`addAdapter: targets match none of the weights (${Object.keys(this.weights).join(', ')})`);
    const root = new Random(opts.seed ?? 0);
    const layers = new Map<string, LayerAdapter>();
    for (const n of names) {
      const base = toCore(this.weights[n]!);
      if (!this.#masks.has(n)) this.#setMask(n, opts.masks?.[n] ?? maskFromTensor(base));
      const extra = opts.layerConfig?.(n);
      const layerCfg = extra ? { ...(opts.config as object ?? {}), ...extra } : config;
      const scores = opts.scores?.(n);
      const state = scores === undefined ? variant.init(base, layerCfg, root.fork(n)) : initScored(variant, n, base, layerCfg, root.fork(n), scores);
      // Unnamed: tfjs variable names are global, and two models may adapt layers of the same name.
      const frozen = new Set(form.frozen ?? []);
      const vars = Object.fromEntries(Object.entries(state.params).map(([p, t]) => [p, tf.variable(tf.tensor(t.data, t.shape), !frozen.has(p))]));
      layers.set(n, { state, vars });
    }
    this.#adapters.set(adapterName, { variant: variant.name, densify: opts.densify ?? false, layers });
    this.#active = adapterName;
    return this;
  }

  get activeAdapter(): string | null {
    return this.#active;
  }
  /** The variant of a named adapter. */
  variantOf(adapterName: string): string {
    return this.#adapter(adapterName).variant;
  }
  get adapterNames(): string[] {
    return [...this.#adapters.keys()];
  }
  /** The adapter merged into the weights, if any. */
  get mergedAdapter(): string | null {
    return this.#merged?.name ?? null;
  }
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Makes another adapter the active one (refused while one is merged). */
  setAdapter(adapterName: string): this {
    this.#adapter(adapterName);
    this.#notMerged('setAdapter');
    this.#active = adapterName;
    return this;
  }
  enableAdapters(): this {
    this.#enabled = true;
    return this;
  }
  /** effectiveWeight returns the plain base weights until enableAdapters. */
  disableAdapters(): this {
    this.#notMerged('disableAdapters');
    this.#enabled = false;
    return this;
  }
  /**
   * The mask of weight `name`: what merges go through. Set when a layer is first adapted (the `masks`
   * option or the base's nonzeros), replaced by a merge that changes the support (a variant's
   * maskAfterMerge, e.g. PST's M), kept by mergeAndUnload for the next adapter unless densify.
   */
  mask(name: string): Mask | undefined {
    return this.#masks.get(name)?.mask;
  }

  /** The variables of one layer of an adapter (default the active one), by the names its state uses. */
  layerVariables(layer: string, adapterName = this.#requireActive('layerVariables')): Readonly<Record<string, tf.Variable>> {
    const l = this.#adapter(adapterName).layers.get(layer);
    if (l === undefined) throw new ArgumentError(`layerVariables: adapter '${adapterName}' has no layer '${layer}'`);
    return l.vars;
  }

  /**
   * MoSA's training forwards so far per layer (the n-th draws `mosaModules(state, n)`), for a checkpoint;
   * `setMosaDraws` puts them back so a resumed run draws the modules an uninterrupted one would.
   */
  mosaDraws(adapterName = this.#requireActive('mosaDraws')): Record<string, number> {
    return Object.fromEntries([...this.#mosaLayers('mosaDraws', adapterName)].map(([n, l]) => [n, mosaDrawCount(l.vars)]));
  }
  setMosaDraws(draws: Record<string, number>, adapterName = this.#requireActive('setMosaDraws')): this {
    const layers = this.#mosaLayers('setMosaDraws', adapterName);
    for (const [n, c] of Object.entries(draws)) {
      const l = layers.get(n);
      if (l === undefined) throw new ArgumentError(`setMosaDraws: adapter '${adapterName}' has no layer '${n}'`);
      if (!Number.isSafeInteger(c) || c < 0) throw new ArgumentError(`setMosaDraws: ${n}: the draw count must be a non-negative integer, got ${String(c)}`);
    }
    for (const [n, c] of Object.entries(draws)) setMosaDrawCount(layers.get(n)!.vars, c);
    return this;
  }

  #mosaLayers(op: string, adapterName: string): Map<string, LayerAdapter> {
    const a = this.#adapter(adapterName);
    if (a.variant !== 'mosa') throw new ArgumentError(`${op}: adapter '${adapterName}' is '${a.variant}'; only mosa draws modules`);
    return a.layers;
  }

  /** Removes an adapter and disposes its variables. */
  deleteAdapter(adapterName: string): this {
    const a = this.#adapter(adapterName);
    if (this.#merged?.name === adapterName) throw new ArgumentError(`deleteAdapter: '${adapterName}' is merged; unmerge it first`);
    for (const l of a.layers.values()) for (const v of Object.values(l.vars)) v.dispose();
    this.#adapters.delete(adapterName);
    if (this.#active === adapterName) this.#active = this.#adapters.size > 0 ? [...this.#adapters.keys()][0]! : null;
    return this;
  }

  /** The active adapter's trainable variables (for optimizer.minimize's varList). */
  trainableVariables(): tf.Variable[] {
    const a = this.#active === null ? undefined : this.#adapters.get(this.#active);
    return a ? [...a.layers.values()].flatMap((l) => Object.values(l.vars).filter((v) => v.trainable)) : [];
  }

  /**
   * W + ΔW of the active adapter for `name` (W itself when disabled, merged, or not targeted): on a
   * masked base, ΔW goes through the mask (the function the merge writes) unless the adapter densifies.
   */
  effectiveWeight(name: string): tf.Tensor {
    const w = this.weights[name];
    if (w === undefined) throw new ArgumentError(`effectiveWeight: no weight named '${name}'`);
    const adapter = this.#merged === null && this.#enabled && this.#active !== null ? this.#adapters.get(this.#active)! : undefined;
    const layer = adapter?.layers.get(name);
    if (layer === undefined) return w;
    const { state, vars } = layer;
    const form = getTfForm(state.variant)!;
    const m = this.#masks.get(name)!;
    const mask = adapter!.densify ? this.#ones(m, w) : m.tensor;
    return tf.tidy(() => {
      const eff = form.effectiveWeight({ base: w, vars, state, mask, training: this.training });
      // kept entries take the form's weight, pruned ones stay the base's (as addMasked merges): exact, and no gradient off the mask
      return form.keepsMask || adapter!.densify || m.full ? eff : tf.where(m.keep, eff, w);
    });
  }

  #ones(m: LayerMask, w: tf.Tensor): tf.Tensor {
    m.ones ??= tf.keep(tf.onesLike(w));
    return m.ones;
  }

  /**
   * The bias of `name` the forward pass uses: the form's (e.g. SSF's γ ⊙ b + β, b = 0 for a layer without
   * one) when the active adapter adapts biases, else the layer's own; null when there is none.
   */
  effectiveBias(name: string): tf.Tensor | null {
    if (this.weights[name] === undefined) throw new ArgumentError(`effectiveBias: no weight named '${name}'`);
    const b = this.biases[name] ?? null;
    const layer = this.#merged === null && this.#enabled && this.#active !== null ? this.#adapters.get(this.#active)!.layers.get(name) : undefined;
    const form = layer === undefined ? undefined : getTfForm(layer.state.variant)!;
    if (layer === undefined || form?.effectiveBias === undefined) return b;
    const { state, vars } = layer;
    const m = this.#masks.get(name)!;
    const mask = this.#adapters.get(this.#active!)!.densify ? this.#ones(m, this.weights[name]!) : m.tensor;
    return tf.tidy(() => form.effectiveBias!({ base: this.weights[name]!, bias: b, vars, state, mask, training: this.training }));
  }

  /** The active adapter's current values as core states (for savePeftAdapter or the core merge). */
  adapterStates(adapterName = this.#active ?? ''): Record<string, AdapterState> {
    const a = this.#adapter(adapterName);
    const out: Record<string, AdapterState> = {};
    for (const [n, l] of a.layers) out[n] = { ...l.state, params: Object.fromEntries(Object.entries(l.vars).map(([p, v]) => [p, toCore(v)])) };
    return out;
  }

  /** Sets an adapter's tensors on one layer from saved values (a resumed run), by the names the state uses. */
  setAdapterParams(adapterName: string, layer: string, params: Record<string, Float32Array>): this {
    const l = this.#adapter(adapterName).layers.get(layer);
    if (l === undefined) throw new ArgumentError(`setAdapterParams: adapter '${adapterName}' has no layer '${layer}'`);
    for (const [p, v] of Object.entries(l.vars)) {
      const data = params[p];
      if (data === undefined) throw new ArgumentError(`setAdapterParams: ${layer}: missing '${p}'`);
      if (data.length !== v.size) throw new ArgumentError(`setAdapterParams: ${layer}.${p} has ${data.length} values, expected ${v.size} [${v.shape.join(', ')}]`);
      tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
    }
    return this;
  }

  /**
   * LoSiA's re-localization, on each layer of the active (losia) adapter that `scores` gives a matrix
   * [out, in] for: the trained core goes into the weight (through the base mask unless densify) and a
   * zero core starts on the subnet the new scores pick (`losiaRelocalize`). The core variables keep their
   * identity and shape, so an optimizer's variable list stays valid. Returns the layers re-localized.
   */
  relocalize(scores: (name: string) => Tensor | tf.Tensor | undefined, opts: { densify?: boolean } = {}): string[] {
    this.#notMerged('relocalize');
    const l = this.#losiaLayers('relocalize');
    const densify = opts.densify ?? this.#adapter(this.#active!).densify;
    const done: string[] = [];
    for (const [n, layer] of l) {
      const sc = scores(n);
      if (sc === undefined) continue;
      const s = checkScores(n, sc, layer.state.shape, 'relocalize');
      const state = { ...(layer.state as IndexedAdapterState<LosiaConfig>), params: { losia_core: toCore(layer.vars.losia_core!) } };
      const next = losiaRelocalize(toCore(this.weights[n]!), state, s, new Random(0), { mask: this.#masks.get(n)!.mask, densify });
      this.weights[n]!.assign(tf.tensor(next.base.data, next.base.shape));
      layer.state = next.state;
      tf.tidy(() => layer.vars.losia_core!.assign(tf.zerosLike(layer.vars.losia_core!)));
      done.push(n);
    }
    return done;
  }

  /** Sets the subnet (rows and columns) of one layer of a losia adapter, e.g. when resuming after re-localizations. */
  setSubnet(adapterName: string, layer: string, subnet: { rows: ArrayLike<number>; cols: ArrayLike<number> }): this {
    const l = this.#losiaLayers('setSubnet', adapterName).get(layer);
    if (l === undefined) throw new ArgumentError(`setSubnet: adapter '${adapterName}' has no layer '${layer}'`);
    const st = l.state as IndexedAdapterState<LosiaConfig>;
    const check = (field: 'rows' | 'cols', bound: number): Int32Array => {
      const v = subnet[field];
      const want = st.indices[field]!.length;
      if (v?.length !== want) throw new ArgumentError(`setSubnet: ${layer}: ${field} has ${v?.length} entries, expected ${want}`);
      const out = Int32Array.from(v);
      out.forEach((x, k) => {
        if (!Number.isInteger(v[k]) || x < 0 || x >= bound || (k > 0 && x <= out[k - 1]!)) {
          throw new ArgumentError(`setSubnet: ${layer}: ${field} must be increasing integers in [0, ${bound}), got ${String(v[k])} at ${k}`);
        }
      });
      return out;
    };
    l.state = { ...st, indices: { rows: check('rows', st.shape[0]), cols: check('cols', st.shape[1]) } } as IndexedAdapterState;
    return this;
  }

  #losiaLayers(op: string, adapterName = this.#requireActive(op)): Map<string, LayerAdapter> {
    const a = this.#adapter(adapterName);
    if (a.variant !== 'losia') throw new ArgumentError(`${op}: adapter '${adapterName}' is '${a.variant}'; only losia re-localizes its subnet`);
    return a.layers;
  }

  /**
   * Writes W + ΔW of the active adapter into the weights, through each base mask unless densify
   * (default: as the adapter was added, so the merged weights compute the function it trained).
   */
  merge(opts: { densify?: boolean } = {}): this {
    this.#notMerged('merge');
    const name = this.#requireActive('merge');
    const adapter = this.#adapters.get(name)!;
    const variant = getVariant(adapter.variant);
    opts = { densify: opts.densify ?? adapter.densify };
    const states = Object.entries(this.adapterStates(name));
    // Checked before anything is written: a shift on a layer without a bias has nowhere to go.
    const biases = new Map<string, Float32Tensor>();
    // variants whose merge changes the support name the new mask, taken from the weights before the merge
    const masks = new Map<string, Mask>();
    if (variant.maskAfterMerge) {
      for (const [n, s] of states) masks.set(n, variant.maskAfterMerge(toCore(this.weights[n]!), s, { mask: this.#masks.get(n)!.mask, densify: opts.densify }));
    }
    if (variant.mergeBias) {
      for (const [n, s] of states) {
        const bias = this.biases[n];
        const mb = variant.mergeBias(bias === undefined ? undefined : toCore(bias), s);
        if (bias === undefined) {
          if (mb.data.some((x) => x !== 0)) throw new ArgumentError(`merge: layer '${n}' has no bias variable but its '${variant.name}' adapter adds a nonzero bias; pass the layer's bias in biases`);
        } else biases.set(n, mb);
      }
    }
    for (const [n, s] of states) {
      const merged = variant.merge(toCore(this.weights[n]!), s, { mask: this.#masks.get(n)!.mask, densify: opts.densify });
      this.weights[n]!.assign(tf.tensor(merged.data, merged.shape));
      const mb = biases.get(n);
      if (mb !== undefined) this.biases[n]!.assign(tf.tensor(mb.data, mb.shape));
    }
    const replaced = new Map<string, Mask>();
    for (const [n, m] of masks) {
      replaced.set(n, this.#masks.get(n)!.mask);
      this.#setMask(n, m);
    }
    this.#merged = { name, densify: opts.densify ?? false, replaced };
    return this;
  }

  #setMask(name: string, mask: Mask): void {
    const shape = this.weights[name]!.shape;
    this.#disposeMask(this.#masks.get(name));
    const kept = Float32Array.from({ length: shape[0]! * shape[1]! }, (_, k) => ((mask.bits[k >>> 5]! >>> (k & 31)) & 1));
    const tensor = tf.keep(tf.tensor(kept, shape));
    this.#masks.set(name, { mask, tensor, keep: tf.keep(tf.cast(tensor, 'bool')), full: kept.every((x) => x === 1) });
  }

  #disposeMask(m: LayerMask | undefined): void {
    m?.tensor.dispose();
    m?.keep.dispose();
    m?.ones?.dispose();
  }

  /** Takes the merged adapter back out of the weights. */
  unmerge(): this {
    if (this.#merged === null) throw new ArgumentError('unmerge: no adapter is merged');
    const { name, densify, replaced } = this.#merged;
    const variant = getVariant(this.#adapters.get(name)!.variant);
    for (const [n, s] of Object.entries(this.adapterStates(name))) {
      // through the mask the merge went through
      const base = variant.unmerge(toCore(this.weights[n]!), s, { mask: replaced.get(n) ?? this.#masks.get(n)!.mask, densify });
      this.weights[n]!.assign(tf.tensor(base.data, base.shape));
      const bias = this.biases[n];
      if (variant.unmergeBias && bias !== undefined) {
        const b = variant.unmergeBias(toCore(bias), s);
        bias.assign(tf.tensor(b.data, b.shape));
      }
    }
    for (const [n, m] of replaced) this.#setMask(n, m);
    this.#merged = null;
    return this;
  }

  /**
   * Merges the active adapter, deletes every adapter, and returns the weights (plain model again). The
   * masks stay (as the merge left them) for an adapter added next, unless the merge densified.
   */
  mergeAndUnload(opts: { densify?: boolean } = {}): Record<string, tf.Variable> {
    if (this.#merged === null) this.merge(opts);
    const densified = this.#merged!.densify;
    this.#merged = null;
    for (const n of this.adapterNames) this.deleteAdapter(n);
    if (densified) this.#clearMasks();
    return { ...this.weights };
  }

  /** Deletes every adapter (none may be merged) and frees the masks' tensors; the weights stay. */
  dispose(): void {
    this.#notMerged('dispose');
    for (const n of this.adapterNames) this.deleteAdapter(n);
    this.#clearMasks();
  }

  #clearMasks(): void {
    for (const m of this.#masks.values()) this.#disposeMask(m);
    this.#masks.clear();
  }

  /** Trainable scalars of an adapter per layer, against the frozen base. */
  trainableReport(adapterName = this.#active ?? ''): TrainableReport {
    const a = this.#adapter(adapterName);
    const layers = [...a.layers].map(([name, l]) => ({ name, trainable: Object.values(l.vars).reduce((s, v) => s + (v.trainable ? v.size : 0), 0) }));
    const trainable = layers.reduce((s, l) => s + l.trainable, 0);
    const base = Object.values(this.weights).reduce((s, w) => s + w.size, 0);
    return { adapter: adapterName, layers, trainable, base, fraction: trainable / base };
  }

  #adapter(name: string): NamedAdapter {
    const a = this.#adapters.get(name);
    if (a === undefined) throw new ArgumentError(`no adapter named '${name}' (have: ${this.adapterNames.join(', ') || 'none'})`);
    return a;
  }
  #requireActive(op: string): string {
    if (this.#active === null) throw new ArgumentError(`${op}: no adapter attached`);
    return this.#active;
  }
  #notMerged(op: string): void {
    if (this.#merged !== null) throw new ArgumentError(`${op}: adapter '${this.#merged.name}' is merged; unmerge it first`);
  }
}

/**
 * Sets PST's mask level (its frozen `pst_sparsity`) on every layer of a pst adapter (default the active
 * one), e.g. each step of `pstSparsityAt`'s schedule. Returns the layers set.
 */
export function setPstSparsity(model: AdapterModel, level: number, adapterName = model.activeAdapter ?? undefined): string[] {
  if (adapterName === undefined) throw new ArgumentError('setPstSparsity: no adapter attached');
  if (typeof level !== 'number' || !(level >= 0 && level < 1)) throw new ArgumentError(`setPstSparsity: level must be in [0, 1), got ${String(level)}`);
  const variant = model.variantOf(adapterName);
  if (variant !== 'pst') throw new ArgumentError(`setPstSparsity: adapter '${adapterName}' is '${variant}', not pst`);
  const layers = model.trainableReport(adapterName).layers.map((l) => l.name);
  for (const n of layers) {
    const v = model.layerVariables(n, adapterName).pst_sparsity!;
    tf.tidy(() => v.assign(tf.tensor([level], v.shape)));
  }
  return layers;
}

/** Wraps `weights` and attaches one adapter (named `adapterName`, default 'default') to the matching ones. */
export function attachAdapters(
  weights: Record<string, tf.Variable>,
  opts: AdapterOptions & { adapterName?: string; biases?: Record<string, tf.Variable> },
): AdapterModel {
  return new AdapterModel(weights, { biases: opts.biases }).addAdapter(opts.adapterName ?? 'default', opts);
}
export * from './sft/tfjs.js';
export * from './zeroth/tfjs.js';
export { chainOfLora } from './variants/chain.js';
export { loraDropoutEnsemble } from './variants/lora-dropout/tfjs.js';
export { pruneDynamicRankModel } from './variants/dynamic-rank/tfjs.js';
export type { ChainOfLoraOptions } from './variants/chain.js';
export { nuclearNormPenalty } from './variants/sara/tfjs.js';
export { placeFlat } from './variants/shared/tfjs.js';
