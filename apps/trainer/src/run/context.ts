// The state a recipe's stages share: the model, the masks of its pruned weights, an attached adapter,
// teacher snapshots, the data, and what the report will show. Stages read and change it; the
// checkpoint saves all of it.

import * as tf from '@tensorflow/tfjs-core';
import type { Mask } from '@sparse/masks';
import { maskToTf } from '@sparse/masks/tfjs';
import type { Site, SiteSparsifier } from '@sparse/activation';
import { sparsifySite } from '@sparse/activation/tfjs';
import type { AdapterModel } from '@sparse/lora-variants/tfjs';
import type { ForwardHooks, LanguageModel, LinearInfo } from '../model/types.js';
import type { ReportActivationDensity, ReportAttention } from '../report/types.js';
import type { ResolvedRecipe } from '../recipe/schema.js';
import type { TextData } from '../data/dataset.js';
import type { MaskTrace } from '../stages/mask-stats.js';
import type { UpdateSetRecord } from './update-sets.js';
import type { RunLog } from './log.js';
import { attentionHooks } from '../methods/attention/hooks.js';

export interface AdapterRecord {
  /** The adapt stage's index and label. */
  stage: number;
  label: string;
  variant: string;
  config: Record<string, unknown>;
  targets: string[];
  seed: number;
  model: AdapterModel;
}

/** The activation sparsifier an activation stage installed: active in every later forward pass. */
export interface ActivationRecord {
  /** The activation stage's index and label. */
  stage: number;
  label: string;
  method: string;
  config: Record<string, unknown>;
  /** By site name (linear inputs by weight name, MLP activations as '<mlp>.act'). */
  sparsifiers: Map<string, SiteSparsifier>;
}

/**
 * The sparse attention an attention stage installed (a method of @sparse/attention): active in every
 * later forward pass. `state` is plain JSON (seer: the trained gate of each layer; others: {}).
 */
export interface AttentionRecord {
  /** The attention stage's index and label. */
  stage: number;
  label: string;
  method: string;
  config: Record<string, unknown>;
  state: AttentionState;
}

/** What an attention method keeps besides its config (plain JSON, checkpointed and exported as is). */
export interface AttentionState {
  /** seer: one trained gate per layer (SeerGate with plain number arrays). */
  gates?: { heads: number; kvHeads: number; headDim: number; gateDim: number; blockSize: number; wq: number[]; wk: number[] }[];
  /** seer: the mean distillation loss of each layer's gate before and after training. */
  gateLoss?: { before: number[]; after: number[] };
}

/** Counts an evaluation takes with sparse attention active, per layer. */
export interface AttentionCounts {
  /** Block methods: attention tiles computed and the tiles of the causal pattern (over heads and sequences). */
  tiles: Map<number, { computed: number; total: number }>;
  /** KV methods: K and V entries kept, entries seen (of each), rows seen (one per token and kv head) and headDim. */
  kv: Map<number, { kKept: number; vKept: number; entries: number; rows: number; headDim: number }>;
}

/** Achieved activation density per site, measured while a stage evaluated with a sparsifier active, as the report shows it. */
export type ActivationDensity = ReportActivationDensity;

export interface ReportAccumulator {
  lossCurves: { label: string; points: { step: number; loss: number }[] }[];
  evaluations: { label: string; data: string; perplexity: number; loss: number; tokens: number }[];
  stages: { index: number; kind: string; method?: string; label: string; ms: number; summary?: string }[];
  adapters: { name: string; variant: string; trainable: number; base: number }[];
  files: { label: string; path: string; bytes: number; denseBytes?: number }[];
  notes: string[];
  /** Mask statistics of each optimizing stage that ran with masks (absent in checkpoints written before they existed). */
  maskTraces?: MaskTrace[];
  /** Activation density measured by evaluations with a sparsifier active. */
  activations?: ActivationDensity[];
  /** What sparse attention computed in evaluations with an attention stage's method active. */
  attention?: AttentionMeasured[];
  /** The entries each train / adapt / distill stage changed and their overlaps (run/update-sets.ts). */
  updateSets?: UpdateSetRecord[];
}

/** An evaluation's sparse-attention summary (methods/attention/counts.ts), as the report shows it. */
export type AttentionMeasured = ReportAttention;

export function emptyReport(): ReportAccumulator {
  return { lossCurves: [], evaluations: [], stages: [], adapters: [], files: [], notes: [], maskTraces: [] };
}

export interface RunData {
  main: TextData;
  /** The embedded shifted task, when a stage asks for it. */
  shifted(): TextData;
}

export class RunContext {
  /** Masks of pruned linear weights, by weight name ([out, in]). */
  readonly masks = new Map<string, Mask>();
  /** The N:M pattern the masks follow, if the last prune asked for one. */
  pattern: { n: number; m: number } | undefined;
  adapter: AdapterRecord | undefined;
  /** The activation sparsifier of the last activation stage, if any. */
  activation: ActivationRecord | undefined;
  /** The sparse attention of the last attention stage, if any. */
  attention: AttentionRecord | undefined;
  /** Per-layer attention counts while counting is on (evaluate measures computed tiles / K, V sparsity). */
  attentionCounts: AttentionCounts | undefined;
  /** Kept / total activation entries per site while counting is on (evaluate measures achieved density). */
  activationCounts: Map<string, { kept: number; total: number }> | undefined;
  /** Parameter values after earlier stages (teachers), by stage index. */
  readonly snapshots = new Map<number, Map<string, Float32Array>>();
  /** Calibration windows chosen by a calibrate stage (else the prune stage draws its own). */
  calibration: { windows: number; batch: number } | undefined;
  report: ReportAccumulator = emptyReport();
  /** Where the report stage wrote report.html. */
  reportPath: string | undefined;
  /** Aborted when the run is asked to stop (Ctrl-C): stages finish their step and checkpoint there. */
  stopSignal: AbortSignal | undefined;
  readonly #maskTensors = new Map<string, tf.Tensor>();

  constructor(
    readonly recipe: ResolvedRecipe,
    readonly dir: string,
    public model: LanguageModel,
    readonly data: RunData,
    readonly log: RunLog,
    readonly backend: { name: string; reason: string },
  ) {}

  /** A stage that changes the architecture (expert pruning) swaps in the rebuilt model; the old one is the caller's to dispose. */
  replaceModel(next: LanguageModel): void {
    for (const t of this.#maskTensors.values()) t.dispose();
    this.#maskTensors.clear();
    this.model = next;
  }

  linears(): LinearInfo[] {
    return this.model.linears();
  }

  /** The 0/1 float mask of a weight as a kept tensor (cached until the masks change). */
  maskTensor(name: string): tf.Tensor | undefined {
    const mask = this.masks.get(name);
    if (mask === undefined) return undefined;
    let t = this.#maskTensors.get(name);
    if (t === undefined) {
      t = tf.keep(maskToTf(mask));
      this.#maskTensors.set(name, t);
    }
    return t;
  }

  setMask(name: string, mask: Mask): void {
    this.masks.set(name, mask);
    this.#maskTensors.get(name)?.dispose();
    this.#maskTensors.delete(name);
  }

  /**
   * Forward hooks for the current state: an activation sparsifier, sparse attention (an attention
   * stage's block masks or pruned KV), an attached adapter's effective weights, and masked
   * weights when `maskBase` (a stage that trains the base weights keeps pruned entries at zero by
   * computing through W ⊙ mask, so their gradient is zero too).
   */
  hooks(opts: { maskBase?: boolean } = {}): ForwardHooks {
    const adapter = this.adapter?.model;
    const targeted = adapter ? new Set(Object.keys(adapter.weights)) : new Set<string>();
    // a bias parameter -> the weight whose adapter may change it (SSF's shift)
    const biasOf = new Map(adapter ? this.linears().filter((l) => l.bias !== undefined && targeted.has(l.name)).map((l) => [l.bias!, l.name]) : []);
    const act = this.activation;
    return {
      ...(act ? { activation: (site: Site, x: tf.Tensor2D) => this.#sparsify(act, site, x) } : {}),
      ...(this.attention ? attentionHooks(this.attention, () => this.attentionCounts) : {}),
      // an adapter that is not a weight update (a bottleneck) adds its term to the layer's product; the
      // weight comes from `this.weight`, so a caller that overrides the weight hook keeps its override
      ...(adapter
        ? {
            linearProduct(this: ForwardHooks, info: LinearInfo, x: tf.Tensor2D): tf.Tensor2D | undefined {
              if (!targeted.has(info.name)) return undefined;
              const term = adapter.outputTerm(info.name, x);
              if (term === null) return undefined;
              const p = adapter.weights[info.name]!;
              return tf.add(tf.matMul(x, this.weight?.(info.name, p) ?? p, false, true), term) as tf.Tensor2D;
            },
          }
        : {}),
      weight: (name, p) => {
        if (adapter && targeted.has(name)) return adapter.effectiveWeight(name);
        if (adapter && biasOf.has(name)) return adapter.effectiveBias(biasOf.get(name)!) ?? p;
        if (opts.maskBase) {
          const m = this.maskTensor(name);
          if (m) return tf.mul(p, m);
        }
        return p;
      },
    };
  }

  /**
   * The activation hook: the site's sparsifier applied through a mask (gradients flow through kept
   * entries), plus its product term. While counting, the density is the share of nonzero entries the
   * layer then multiplies (what a sparse-input kernel reads).
   */
  #sparsify(act: ActivationRecord, site: Site, x: tf.Tensor2D): tf.Tensor2D | { x: tf.Tensor2D; add: tf.Tensor2D } {
    const sp = act.sparsifiers.get(site.name);
    if (sp === undefined) return x;
    const r = sparsifySite(sp, x);
    const counts = this.activationCounts;
    if (counts) {
      const v = (r instanceof tf.Tensor ? r : r.x).dataSync();
      let kept = 0;
      for (let i = 0; i < v.length; i++) if (v[i] !== 0) kept++;
      const c = counts.get(site.name) ?? { kept: 0, total: 0 };
      c.kept += kept;
      c.total += v.length;
      counts.set(site.name, c);
    }
    return r;
  }

  /** Current values of every parameter (copies). */
  paramValues(): Map<string, Float32Array> {
    return new Map(Object.entries(this.model.params).map(([k, v]) => [k, Float32Array.from(v.dataSync() as Float32Array)]));
  }

  dispose(): void {
    for (const t of this.#maskTensors.values()) t.dispose();
    this.#maskTensors.clear();
  }
}
