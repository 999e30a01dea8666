// Which masked layers of a train stage run on the sparse path (sparse-linear.ts). A recipe's
// `path: sparse | dense` decides outright; `auto` packs a layer when its density is at most `maxDensity`
// and it has at least `minWeights` weights: below that size tfjs's per-op overhead outweighs the saved
// arithmetic. The threshold is what `pnpm bench dst` measured on this CPU, stored in a small JSON file
// (SPARSE_PATH_FILE, default ~/.cache/sparse/sparse-path.json) for the CPU model it ran on; without a
// measurement for this CPU the built-in default applies. Without native kernels (the TypeScript
// reference kernels only) `auto` stays dense.

import { existsSync, readFileSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { count, type Mask } from '@sparse/masks';
import { kernelBackend, REFERENCE_BACKEND } from '@sparse/tensor';
import type { LinearInfo } from '../model/types.js';
import { SparseLinears } from './sparse-linear.js';

export interface SparsePathThreshold {
  /** Largest density (kept / size) at which the sparse step is faster. */
  maxDensity: number;
  /** Smallest layer (out · in) at which it is. */
  minWeights: number;
  /** Where the numbers come from. */
  source: string;
}

/**
 * What `pnpm bench dst` measured on an AMD EPYC (AVX-512 present, the addon's AVX2 kernels, 2 threads, a
 * loaded machine): the trainer's packed step of an MLP block (512 tokens, Adam included) against its
 * dense step was 2.7x faster at density 0.3 and 0.89x at 0.5 for d 1024 / hidden 4096, 1.7x and 0.84x for
 * d 256 / hidden 1024 (262,144 weights per layer); the native kernels alone cross over at density 0.38.
 * Rounded down to a density the sparse step clearly wins at; smaller layers than the smallest measured
 * stay dense.
 */
export const DEFAULT_SPARSE_PATH: SparsePathThreshold = { maxDensity: 0.35, minWeights: 262_144, source: 'built-in default' };

export const sparsePathFile = (): string => process.env.SPARSE_PATH_FILE ?? join(homedir(), '.cache', 'sparse', 'sparse-path.json');

/** This machine's CPU model, as the stored measurements are keyed. */
export const cpuModel = (): string => cpus()[0]?.model.trim() ?? 'unknown';

/** The stored measurement for this CPU, else the default. A malformed file is named in `source` and ignored. */
export function sparsePathThreshold(file = sparsePathFile()): SparsePathThreshold {
  if (!existsSync(file)) return DEFAULT_SPARSE_PATH;
  try {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { maxDensity?: unknown; minWeights?: unknown; measured?: unknown }>;
    const mine = stored[cpuModel()];
    if (mine === undefined) return DEFAULT_SPARSE_PATH;
    const { maxDensity, minWeights } = mine;
    if (typeof maxDensity !== 'number' || !(maxDensity >= 0 && maxDensity <= 1) || typeof minWeights !== 'number' || !(minWeights >= 0)) {
      return { ...DEFAULT_SPARSE_PATH, source: `built-in default (${file} has no valid maxDensity/minWeights for this CPU)` };
    }
    return { maxDensity, minWeights, source: `${file}${typeof mine.measured === 'string' ? `, measured ${mine.measured}` : ''}` };
  } catch (error) {
    return { ...DEFAULT_SPARSE_PATH, source: `built-in default (${file} is not JSON: ${(error as Error).message})` };
  }
}

export interface PathChoice {
  /** The packed layers, or undefined when every layer stays dense. */
  sparse: SparseLinears | undefined;
  /** One line for the run's output: which path, for how many layers, and why. */
  line: string;
}

/** The path of a stage training `layers` (those with a mask in `masks` are candidates). */
export function choosePath(path: 'auto' | 'dense' | 'sparse', params: ConstructorParameters<typeof SparseLinears>[0], layers: readonly LinearInfo[], masks: ReadonlyMap<string, Mask>): PathChoice {
  const masked = layers.filter((l) => masks.has(l.name)).map((info) => ({ info, mask: masks.get(info.name)! }));
  if (masked.length === 0) return { sparse: undefined, line: 'dense path (no masked layers)' };
  if (path === 'dense') return { sparse: undefined, line: 'dense path (path: dense)' };
  let chosen = masked;
  let why = 'path: sparse';
  if (path === 'auto') {
    if (kernelBackend('linearCSR') === REFERENCE_BACKEND) return { sparse: undefined, line: 'dense path (auto: no native sparse kernels, only the reference ones)' };
    const t = sparsePathThreshold();
    chosen = masked.filter(({ info, mask }) => info.out * info.in >= t.minWeights && count(mask) <= t.maxDensity * info.out * info.in);
    why = `auto: density <= ${t.maxDensity} and >= ${t.minWeights} weights, from ${t.source}`;
    if (chosen.length === 0) return { sparse: undefined, line: `dense path (${why}: no layer qualifies)` };
  }
  const kept = chosen.reduce((n, c) => n + count(c.mask), 0);
  const size = chosen.reduce((n, c) => n + c.info.out * c.info.in, 0);
  return {
    sparse: new SparseLinears(params, chosen),
    line: `sparse path for ${chosen.length} of ${masked.length} masked layers (density ${(kept / size).toFixed(3)}; ${why}; kernels: ${kernelBackend('linearCSR') ?? 'none'})`,
  };
}
