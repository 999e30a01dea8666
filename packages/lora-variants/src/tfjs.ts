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
import { checkScores, toCore } from './variants/helpers/tfjs.js';
import type { IndexedAdapterState, ScoredAdapterVariant } from './variants/helpers/sparse.js';
import type { AdapterState, AdapterVariant, CoupledGroup } from './variants/types.js';

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
  /**
   * The model's coupled groups (an attention's Q/K/V/O, an MLP's up/gate/down; see CoupledGroup): a
   * variant with a `coupled` init that wants them (S2FT) selects once per group for its targeted
   * members. Ignored by every other variant.
   */
  groups?: readonly CoupledGroup[];
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
  /** The mask as bool, made on first use (only a projected form on a pruned base needs it). */
  keep?: tf.Tensor;
  full: boolean;
  ones?: tf.Tensor;
}

export { getTfForm, listTfForms, registerTfForm } from './tfjs-forms/index.js';
export type { AdapterTrainingContext, AdapterTrainingHooks, TfAdapterForm, TfFormContext } from './tfjs-forms/index.js';

function matcher(t: TargetPattern): (name: string) => boolean {
  if (typeof t === 'function') return t;
  if (t instanceof RegExp) return (n) => t.test(n);
  const list = typeof t === 'string' ? [t] : t;
  // PEFT's rule: a target matches the full name or its tail after a '.'.
  return (n) => list.some((x) => n === x || n.endsWith(`.${x}`));
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
    const grouped = this.#coupledStates(variant, config, names, opts, root);
    for (const n of names) {
      const base = toCore(this.weights[n]!);
      if (!this.#masks.has(n)) this.#setMask(n, opts.masks?.[n] ?? maskFromTensor(base));
      const extra = opts.layerConfig?.(n);
      const layerCfg = extra ? { ...(opts.config as object ?? {}), ...extra } : config;
      const scores = opts.scores?.(n);
      const state = grouped.get(n) ?? (scores === undefined ? variant.init(base, layerCfg, root.fork(n)) : initScored(variant, n, base, layerCfg, root.fork(n), scores));
      // Unnamed: tfjs variable names are global, and two models may adapt layers of the same name.
      const frozen = new Set(form.frozen ?? []);
      const vars = Object.fromEntries(Object.entries(state.params).map(([p, t]) => [p, tf.variable(tf.tensor(t.data, t.shape), !frozen.has(p))]));
      layers.set(n, { state, vars });
    }
    this.#adapters.set(adapterName, { variant: variant.name, densify: opts.densify ?? false, layers });
    this.#active = adapterName;
    return this;
  }

  /** States of the targeted members of each coupled group, for a variant whose config wants groups (each group's stream: 'group:<name>'). */
  #coupledStates(variant: AdapterVariant, config: unknown, names: string[], opts: AdapterOptions, root: Random): Map<string, AdapterState> {
    const out = new Map<string, AdapterState>();
    if (variant.coupled === undefined || opts.groups === undefined || !variant.coupled.wants(config)) return out;
    const targeted = new Set(names);
    for (const g of opts.groups) {
      const members = g.members.filter((m) => targeted.has(m.name));
      if (members.length === 0) continue;
      for (const m of members) if (out.has(m.name)) throw new ArgumentError(`addAdapter: weight '${m.name}' is in two coupled groups (the second: '${g.name}')`);
      const bases = Object.fromEntries(members.map((m) => [m.name, toCore(this.weights[m.name]!)]));
      const scores = opts.scores && ((n: string) => {
        const s = opts.scores!(n);
        return s === undefined ? undefined : checkScores(n, s, bases[n]!.shape, 'addAdapter');
      });
      const states = variant.coupled.init({ ...g, members }, bases, config, root.fork(`group:${g.name}`), scores);
      for (const m of members) {
        const st = states[m.name];
        if (st === undefined) throw new ArgumentError(`addAdapter: variant '${variant.name}' made no adapter for '${m.name}' of coupled group '${g.name}'`);
        out.set(m.name, st);
      }
    }
    return out;
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
      const eff = form.effectiveWeight({ base: w, vars, state, mask, training: this.training, maskFull: adapter!.densify || m.full });
      // kept entries take the form's weight, pruned ones stay the base's (as addMasked merges): exact, and no gradient off the mask
      if (form.keepsMask || adapter!.densify || m.full) return eff;
      m.keep ??= tf.keep(tf.cast(m.tensor, 'bool'));
      return tf.where(m.keep, eff, w);
    });
  }

  /**
   * The term the active adapter adds to layer `name`'s output for input x [n, in] when its form has one
   * (a bottleneck adapter), else null: the layer computes x · effectiveWeight(name)ᵀ (+ bias) plus this.
   */
  outputTerm(name: string, x: tf.Tensor2D): tf.Tensor2D | null {
    if (this.weights[name] === undefined) throw new ArgumentError(`outputTerm: no weight named '${name}'`);
    const adapter = this.#merged === null && this.#enabled && this.#active !== null ? this.#adapters.get(this.#active)! : undefined;
    const layer = adapter?.layers.get(name);
    if (layer === undefined) return null;
    const form = getTfForm(layer.state.variant)!;
    if (form.output === undefined) return null;
    const w = this.weights[name]!;
    const m = this.#masks.get(name)!;
    const mask = adapter!.densify ? this.#ones(m, w) : m.tensor;
    // a form returns undefined for configs without an output term (the linear form of the same variant)
    const out = tf.tidy(() => form.output!({ base: w, vars: layer.vars, state: layer.state, mask, training: this.training, maskFull: adapter!.densify || m.full, x })) as tf.Tensor2D | undefined;
    return out ?? null;
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

  /** The active adapter's current values as core states (for savePEFTAdapter or the core merge). */
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
   * Replaces one layer's state (its config and index selections, e.g. a re-selected support) while its
   * variables stay: the variant and the shapes of its params must not change. The params' values are
   * the variables'; set them with setAdapterParams.
   */
  setLayerState(adapterName: string, layer: string, state: AdapterState): this {
    this.#notMerged('setLayerState');
    const l = this.#adapter(adapterName).layers.get(layer);
    if (l === undefined) throw new ArgumentError(`setLayerState: adapter '${adapterName}' has no layer '${layer}'`);
    if (state?.variant !== l.state.variant) throw new ArgumentError(`setLayerState: ${layer}: the state is for '${String(state?.variant)}', the adapter is '${l.state.variant}'`);
    if (state.shape[0] !== l.state.shape[0] || state.shape[1] !== l.state.shape[1]) {
      throw new ShapeError(`setLayerState: ${layer}: the state is for [${state.shape.join(', ')}], the layer is [${l.state.shape.join(', ')}]`);
    }
    for (const [p, v] of Object.entries(l.vars)) {
      const t = state.params[p];
      if (t !== undefined && (t.shape.length !== v.shape.length || t.shape.some((d, k) => d !== v.shape[k]))) {
        throw new ShapeError(`setLayerState: ${layer}.${p} is [${t.shape.join(', ')}], the variable is [${v.shape.join(', ')}]`);
      }
    }
    l.state = { ...state, params: {} };
    return this;
  }

  /** Whether an adapter was added with `densify` (it trains and merges ΔW on every entry). */
  densifies(adapterName = this.#requireActive('densifies')): boolean {
    return this.#adapter(adapterName).densify;
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
    const why = variant.unmergeable?.([...adapter.layers.values()][0]?.state.config);
    if (why !== undefined) throw new ArgumentError(`merge: adapter '${name}' (${variant.name}) cannot be merged into the weights: ${why}`);
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
    this.#masks.set(name, { mask, tensor, full: kept.every((x) => x === 1) });
  }

  #disposeMask(m: LayerMask | undefined): void {
    m?.tensor.dispose();
    m?.keep?.dispose();
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

/** Wraps `weights` and attaches one adapter (named `adapterName`, default 'default') to the matching ones. */
export function attachAdapters(
  weights: Record<string, tf.Variable>,
  opts: AdapterOptions & { adapterName?: string; biases?: Record<string, tf.Variable> },
): AdapterModel {
  return new AdapterModel(weights, { biases: opts.biases }).addAdapter(opts.adapterName ?? 'default', opts);
}
export * from './sft/tfjs.js';
export * from './zeroth/tfjs.js';
export { chainOfLoRA } from './variants/chain.js';
export { loraDropoutEnsemble } from './variants/lora-dropout/tfjs.js';
export { pruneDynamicRankModel } from './variants/dynamic-rank/tfjs.js';
export { relocalizeLoSiA, setLoSiASubnet } from './variants/losia/tfjs.js';
export { mosaDraws, setMoSADraws } from './variants/mosa/tfjs.js';
export { setPSTSparsity } from './variants/pst/tfjs.js';
export type { ChainOfLoRAOptions } from './variants/chain.js';
export { nuclearNormPenalty } from './variants/sara/tfjs.js';
export { placeFlat } from './variants/helpers/tfjs.js';
