// A sparsifier lifecycle in the style of torch.ao.pruning: prepare() turns defaults plus per-layer overrides
// into one group per layer, step() updates each group's mask with its method, squash() bakes the masks into
// the weights. Masks live apart from the weights until then, and state() saves them like optimizer state.

import { applyMask, cloneMask, isKept, maskAll, sparsity, validateMask, type Mask } from '@sparse/masks';
import { ArgumentError, DTypeError, forEachIndex, ShapeError, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { parsePrunerConfig } from './define.js';
import { getPruner } from './registry.js';
import type { LayerStats, ReconstructionEstimate } from './types.js';

/** A layer as the sparsifier sees it: its weight [out, in], float32, updated in place. */
export interface SparsifiableLayer {
  weight: Tensor;
}

/** How one layer is pruned: a registered method, its config, and whether a later step starts from the current mask. */
export interface LayerPruneSpec {
  method: string;
  config?: Record<string, unknown>;
  /**
   * From the second step on, hand the layer's current mask to the method: SparseGPT then keeps it and only
   * reconstructs the weights, DSnoT starts its swaps from it; other methods ignore it. Default false.
   */
  useCurrentMask?: boolean;
}

export interface SparsifierConfig {
  defaults: LayerPruneSpec;
  /** Per-layer overrides by exact layer name. A pattern given here (sparsity or n/m) replaces the default pattern. */
  layers?: Record<string, Partial<LayerPruneSpec>>;
}

/** One prepared layer. */
export interface SparsifierGroup {
  name: string;
  method: string;
  /** The merged config as given (before the method's defaults), as state() saves it. */
  config: Record<string, unknown>;
  useCurrentMask: boolean;
  /** Number of step() calls that updated this group's mask. */
  steps: number;
}

export interface StepReport {
  method: string;
  /** Achieved fraction of pruned entries. */
  sparsity: number;
  error?: ReconstructionEstimate;
}

/** What state() returns: JSON-safe except the masks, which are Mask objects (save them with safetensors). */
export interface SparsifierState {
  version: 1;
  groups: SparsifierGroup[];
  masks: Record<string, Mask>;
}

export interface StepOptions {
  /** Only these layers (default: all), e.g. one transformer block at a time in the sequential scheme. */
  layers?: readonly string[];
  /** Calibration statistics by layer name, for the methods that need them. */
  stats?: Record<string, LayerStats>;
}

const PATTERN_KEYS = ['sparsity', 'n', 'm'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Defaults plus an override; a pattern in the override replaces the default one, a new method keeps only the pattern. */
function mergeConfig(defaults: Record<string, unknown>, override: Record<string, unknown>, sameMethod: boolean): Record<string, unknown> {
  const overridesPattern = PATTERN_KEYS.some((k) => k in override);
  const base = Object.fromEntries(
    Object.entries(defaults).filter(([k]) => (PATTERN_KEYS.includes(k) ? !overridesPattern : sameMethod)),
  );
  return { ...base, ...override };
}

interface Group extends SparsifierGroup {
  weight: Tensor;
  mask: Mask;
}

export class Sparsifier {
  private groups = new Map<string, Group>();

  /** Turns the config into one group per layer; every config is validated now (errors name the layer and field). */
  prepare(layers: Record<string, SparsifiableLayer>, config: SparsifierConfig): this {
    if (!isRecord(layers) || Object.keys(layers).length === 0) throw new ArgumentError('Sparsifier.prepare: layers must name at least one layer');
    if (!isRecord(config) || !isRecord(config.defaults) || typeof config.defaults.method !== 'string') {
      throw new ArgumentError('Sparsifier.prepare: config needs defaults: { method, config? }');
    }
    const overrides = config.layers ?? {};
    if (!isRecord(overrides)) throw new ArgumentError('Sparsifier.prepare: config.layers must map layer names to overrides');
    for (const name of Object.keys(overrides)) {
      if (!(name in layers)) throw new ArgumentError(`Sparsifier.prepare: config.layers names '${name}', which is not one of the layers (${Object.keys(layers).join(', ')})`);
    }
    const groups = new Map<string, Group>();
    for (const [name, layer] of Object.entries(layers)) {
      const w = layer?.weight;
      if (!isRecord(w) || w.shape?.length !== 2) throw new ShapeError(`Sparsifier.prepare: layer '${name}' needs a weight matrix [out, in]`);
      if (w.dtype !== 'float32') throw new DTypeError(`Sparsifier.prepare: layer '${name}' weight must be float32 (it is updated in place), got ${String(w.dtype)}`);
      const o = overrides[name] ?? {};
      if (!isRecord(o)) throw new ArgumentError(`Sparsifier.prepare: config.layers['${name}'] must be an object`);
      const method = typeof o.method === 'string' ? o.method : config.defaults.method;
      const defaultsConfig = config.defaults.config ?? {};
      const overrideConfig = o.config ?? {};
      if (!isRecord(defaultsConfig) || !isRecord(overrideConfig)) throw new ArgumentError(`Sparsifier.prepare: layer '${name}': config must be an object`);
      const merged = mergeConfig(defaultsConfig, overrideConfig, method === config.defaults.method);
      parsePrunerConfig(getPruner(method), name, merged); // validate now, not at the first step
      groups.set(name, {
        name,
        method,
        config: merged,
        useCurrentMask: o.useCurrentMask ?? config.defaults.useCurrentMask ?? false,
        steps: 0,
        weight: w,
        mask: maskAll(w.shape),
      });
    }
    this.groups = groups;
    return this;
  }

  /** The prepared layer names, in preparation order. */
  get layerNames(): string[] {
    return [...this.groups.keys()];
  }

  /** A description of each prepared group (a copy). */
  get groupInfo(): SparsifierGroup[] {
    return [...this.groups.values()].map((g) => ({ name: g.name, method: g.method, config: { ...g.config }, useCurrentMask: g.useCurrentMask, steps: g.steps }));
  }

  private group(name: string, where: string): Group {
    const g = this.groups.get(name);
    if (g === undefined) {
      throw new ArgumentError(`Sparsifier.${where}: no prepared layer '${name}'${this.groups.size === 0 ? ' (call prepare first)' : ` (layers: ${this.layerNames.join(', ')})`}`);
    }
    return g;
  }

  /**
   * Runs the group's method on its current weight and stores the new mask. Kept weights the method changed
   * (SparseGPT's reconstruction) are written into the layer's weight; pruned entries keep their values until squash().
   */
  updateMask(name: string, stats?: LayerStats): StepReport {
    const g = this.group(name, 'updateMask');
    const def = getPruner(g.method);
    const config = parsePrunerConfig(def, name, g.config);
    const input = { name, weight: g.weight, stats, config, ...(g.useCurrentMask && g.steps > 0 ? { mask: g.mask } : {}) };
    const result = def.prune(input);
    validateMask(result.mask, `Sparsifier.updateMask: layer '${name}'`, 'mask');
    const values = result.weight.data;
    let k = 0;
    forEachIndex(g.weight, (pos) => {
      if (isKept(result.mask, k)) (g.weight.data as Float32Array)[pos] = values[k]!;
      k++;
    });
    g.mask = result.mask;
    g.steps++;
    const report: StepReport = { method: g.method, sparsity: sparsity(result.mask) };
    if (result.error !== undefined) report.error = result.error;
    return report;
  }

  /** Updates the masks of all layers (or opts.layers), in preparation order. */
  step(opts: StepOptions = {}): Record<string, StepReport> {
    if (this.groups.size === 0) throw new ArgumentError('Sparsifier.step: nothing prepared (call prepare first)');
    const names = opts.layers ?? this.layerNames;
    const out: Record<string, StepReport> = {};
    for (const name of names) out[name] = this.updateMask(name, opts.stats?.[name]);
    return out;
  }

  /** The current mask of a layer (a copy). */
  mask(name: string): Mask {
    return cloneMask(this.group(name, 'mask').mask);
  }

  /** All current masks by layer name (copies). */
  masks(): Record<string, Mask> {
    return Object.fromEntries(this.layerNames.map((n) => [n, this.mask(n)]));
  }

  /** The weight as the sparse layer computes with it, W ⊙ mask, without touching the layer (a new tensor). */
  maskedWeight(name: string): Float32Tensor {
    const g = this.group(name, 'maskedWeight');
    return applyMask(g.mask, g.weight) as Float32Tensor;
  }

  /** Zeros every pruned weight in place, forgets the groups (prepare again to continue) and returns the masks. */
  squash(): Record<string, Mask> {
    const masks = this.masks();
    for (const g of this.groups.values()) applyMask(g.mask, g.weight, { inPlace: true });
    this.groups = new Map();
    return masks;
  }

  /** Groups and masks, to save with a checkpoint. */
  state(): SparsifierState {
    return { version: 1, groups: this.groupInfo, masks: this.masks() };
  }

  /**
   * Restores groups and masks saved by state() onto a sparsifier prepared with the same layers (the weights
   * come from the checkpoint the state was saved with).
   */
  loadState(state: SparsifierState): this {
    if (!isRecord(state) || state.version !== 1 || !Array.isArray(state.groups) || !isRecord(state.masks)) {
      throw new ArgumentError('Sparsifier.loadState: expected { version: 1, groups, masks } from state()');
    }
    const restored = new Map<string, Group>();
    for (const s of state.groups) {
      const g = this.group(s?.name, 'loadState');
      const mask = state.masks[s.name];
      validateMask(mask, `Sparsifier.loadState: layer '${s.name}'`, 'mask');
      if (mask.shape.length !== 2 || mask.shape[0] !== g.weight.shape[0] || mask.shape[1] !== g.weight.shape[1]) {
        throw new ShapeError(`Sparsifier.loadState: layer '${s.name}' mask is [${mask.shape.join(', ')}] but its weight is [${g.weight.shape.join(', ')}]`);
      }
      if (!isRecord(s.config) || !Number.isSafeInteger(s.steps) || s.steps < 0) throw new ArgumentError(`Sparsifier.loadState: layer '${s.name}' has a malformed group`);
      parsePrunerConfig(getPruner(s.method), s.name, s.config);
      restored.set(s.name, { ...g, method: s.method, config: { ...s.config }, useCurrentMask: s.useCurrentMask === true, steps: s.steps, mask: cloneMask(mask) });
    }
    for (const name of this.layerNames) {
      if (!restored.has(name)) throw new ArgumentError(`Sparsifier.loadState: the state has no group for prepared layer '${name}'`);
    }
    this.groups = restored;
    return this;
  }
}

