// Chain of LoRA (Xia et al., COLA): residual learning in rounds. Each round attaches a fresh adapter,
// trains it, merges it into the base weights and drops it, so the next adapter learns what is left
// (a Frank–Wolfe-style sequence of low-rank steps) at the memory cost of a single adapter. Merges go
// through the masks taken before the first round, so a pruned base keeps its pattern round after round
// unless `densify` is asked for.
import { maskFromTensor, type Mask } from '@sparse/masks';
import { ArgumentError, tensor } from '@sparse/tensor';
import type { AdapterModel, AdapterOptions } from '../tfjs.js';

export interface ChainOfLoRAOptions extends AdapterOptions {
  /** How many adapters are trained and merged one after the other. */
  rounds: number;
  /** Name of round k's adapter: `${prefix}${k}` (default 'chain-'). */
  prefix?: string;
  /** Merge densely (fills the base's zeros). */
  densify?: boolean;
}

/**
 * Runs `rounds` rounds of attach (seed + k), `train(model, k)`, merge-and-unload on `model`, which must
 * hold no adapter yet. Returns the adapter's trainable count per round (the same each round).
 */
export async function chainOfLoRA(
  model: AdapterModel,
  opts: ChainOfLoRAOptions,
  train: (model: AdapterModel, round: number) => void | Promise<void>,
): Promise<number[]> {
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) throw new ArgumentError(`chainOfLoRA: rounds must be a positive integer, got ${String(opts.rounds)}`);
  if (model.adapterNames.length > 0) {
    throw new ArgumentError(`chainOfLoRA: the model already holds adapters (${model.adapterNames.join(', ')}); each round merges and unloads every adapter`);
  }
  // Fixed before round 0: a weight that a merge happens to make exactly 0 must not drop out of the mask.
  const masks: Record<string, Mask> = {};
  for (const [n, w] of Object.entries(model.weights)) masks[n] = opts.masks?.[n] ?? maskFromTensor(tensor(Float32Array.from(w.dataSync() as Float32Array), w.shape));
  const { rounds, prefix = 'chain-', densify, ...adapter } = opts;
  const counts: number[] = [];
  for (let k = 0; k < rounds; k++) {
    model.addAdapter(`${prefix}${k}`, { ...adapter, masks, seed: (adapter.seed ?? 0) + k });
    counts.push(model.trainableReport().trainable);
    await train(model, k);
    model.mergeAndUnload({ densify });
  }
  return counts;
}
