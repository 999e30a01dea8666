// IST, Importance-aware Sparse Tuning (Yao et al. 2024, "Layer-wise Importance Matters: Less Memory for
// Better Performance in PEFT of LLMs"): each step updates only a sampled subset of the layers' PEFT
// modules, sampled by a per-layer score learned during training.
//
// The score s_l is a "suppression reward": every `every` steps, `probes` distinct sets of `suppress`
// layers are drawn with weights σ(s_l) (likely the less important), the adapters of each set are scaled
// by `suppression` and the loss of one held-aside batch is measured; the reward of set k is
// r_k = exp(−loss_k) minus the mean over the probes, and s_l += rate · r_k · σ(s_l)(1 − σ(s_l)) for every
// layer l of set k (σ taken before the update). A high s_l means suppressing the layer did not hurt, so
// the layers to update are drawn with weights σ(−s_l). Both draws are weighted sampling without
// replacement (each pick proportional to its weight among the layers not yet picked).
//
// Differs from the paper: when fewer distinct suppression sets exist than `probes`, every one of them is
// probed once (the paper redraws until it has `probes` distinct sets, which cannot end there).
import { ArgumentError, Random, type RandomState } from '@sparse/tensor';
import { z } from 'zod';

export const istConfigSchema = z.strictObject({
  /** Fraction of the layers updated at each step (at least one). */
  update: z.number().gt(0, 'update must be in (0, 1]').max(1, 'update must be in (0, 1]').default(0.25),
  /** Fraction of the layers suppressed in each probe (at least one). */
  suppress: z.number().gt(0, 'suppress must be in (0, 1]').max(1, 'suppress must be in (0, 1]').default(0.5),
  /** Steps between importance updates. */
  every: z.int('every must be an integer').min(1, 'every must be at least 1').default(10),
  /** Suppression sets probed per importance update. */
  probes: z.int('probes must be an integer').min(1, 'probes must be at least 1').default(3),
  /** Step size of the score update. */
  rate: z.number().positive('rate must be positive').default(10),
  /** Scale of a suppressed layer's adapter during a probe. */
  suppression: z.number().min(0, 'suppression must be in [0, 1)').lt(1, 'suppression must be in [0, 1)').default(0.25),
});
export type ISTConfig = z.output<typeof istConfigSchema>;

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * `k` distinct items of [0, weights.length) drawn one at a time, each with probability proportional to
 * its weight among the items not drawn yet (torch.multinomial without replacement); returned sorted.
 */
export function weightedSampleWithoutReplacement(weights: ArrayLike<number>, k: number, rng: Random): number[] {
  const n = weights.length;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new ArgumentError(`weightedSampleWithoutReplacement: k must be in 0..${n}, got ${k}`);
  for (let i = 0; i < n; i++) if (!(weights[i]! > 0) || !Number.isFinite(weights[i]!)) throw new ArgumentError(`weightedSampleWithoutReplacement: weights[${i}] must be positive and finite, got ${weights[i]}`);
  const left = Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (let j = 0; j < k; j++) {
    const total = left.reduce((s, i) => s + weights[i]!, 0);
    let u = rng.next() * total;
    let pos = left.length - 1;
    for (let q = 0; q < left.length; q++) {
      u -= weights[left[q]!]!;
      if (u < 0) {
        pos = q;
        break;
      }
    }
    out.push(left[pos]!);
    left.splice(pos, 1);
  }
  return out.sort((a, b) => a - b);
}

/** s_l += rate · r_k · σ(s_l)(1 − σ(s_l)) for l in sets[k], r_k = exp(−loss_k) − mean_k exp(−loss_k); σ from the scores before. Returns new scores. */
export function istScoreUpdate(scores: ArrayLike<number>, sets: readonly (readonly number[])[], losses: readonly number[], rate: number): Float64Array {
  if (sets.length !== losses.length || sets.length === 0) throw new ArgumentError(`istScoreUpdate: ${sets.length} sets for ${losses.length} losses (need as many, at least one)`);
  const rewards = losses.map((l) => Math.exp(-l));
  const mean = rewards.reduce((s, r) => s + r, 0) / rewards.length;
  const p = Array.from(scores, sigmoid);
  const next = Float64Array.from(scores);
  sets.forEach((set, k) => {
    for (const l of set) next[l] = next[l]! + (rewards[k]! - mean) * p[l]! * (1 - p[l]!) * rate;
  });
  return next;
}

/** C(n, k), as a float (exact for the small n of layer counts). */
function choose(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return Math.round(c);
}

export interface LayerImportanceState {
  scores: number[];
  rng: RandomState;
}

/** IST's per-layer scores and its two samplers, with a checkpointable state. */
export class LayerImportance {
  readonly layers: number;
  readonly config: ISTConfig;
  scores: Float64Array;
  #rng: Random;

  constructor(layers: number, config: ISTConfig, rng: Random) {
    if (!Number.isInteger(layers) || layers < 1) throw new ArgumentError(`LayerImportance: layers must be a positive integer, got ${layers}`);
    this.layers = layers;
    this.config = config;
    this.scores = new Float64Array(layers);
    this.#rng = rng;
  }

  /** Layers updated per step: max(1, floor(update · layers)). */
  get updated(): number {
    return Math.max(1, Math.floor(this.config.update * this.layers));
  }

  /** Layers suppressed per probe: max(1, floor(suppress · layers)). */
  get suppressed(): number {
    return Math.max(1, Math.floor(this.config.suppress * this.layers));
  }

  /** Whether an importance update comes before step `step` (1-based): after every `every` steps. */
  learnsBefore(step: number): boolean {
    return step > 1 && (step - 1) % this.config.every === 0;
  }

  /** The layers the next step updates, drawn with weights σ(−s). */
  sampleUpdate(): number[] {
    return weightedSampleWithoutReplacement(Array.from(this.scores, (s) => sigmoid(-s)), this.updated, this.#rng);
  }

  /** min(probes, C(layers, suppressed)) distinct suppression sets, each drawn with weights σ(s). */
  sampleProbes(): number[][] {
    const want = Math.min(this.config.probes, choose(this.layers, this.suppressed));
    const w = Array.from(this.scores, sigmoid);
    const sets: number[][] = [];
    while (sets.length < want) {
      const s = weightedSampleWithoutReplacement(w, this.suppressed, this.#rng);
      if (!sets.some((t) => t.join() === s.join())) sets.push(s);
    }
    return sets;
  }

  /** The score update from the probes' losses. */
  learn(sets: readonly (readonly number[])[], losses: readonly number[]): void {
    this.scores = istScoreUpdate(this.scores, sets, losses, this.config.rate);
  }

  state(): LayerImportanceState {
    return { scores: Array.from(this.scores), rng: this.#rng.state() };
  }

  load(state: LayerImportanceState): this {
    if (state?.scores?.length !== this.layers) throw new ArgumentError(`LayerImportance.load: the state has ${state?.scores?.length} scores for ${this.layers} layers`);
    this.scores = Float64Array.from(state.scores);
    this.#rng = Random.fromState(state.rng);
    return this;
  }
}
