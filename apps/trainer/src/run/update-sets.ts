// Which entries of the linear weights an optimizing stage changed, and how the sets of different stages
// overlap: the measurements of Mukherjee et al. 2025 ("Reinforcement Learning Finetunes Small Subnetworks
// in Large Language Models"): the update density (the share of entries whose value changed; one minus it
// is their "update sparsity"), and the overlap between the subnetworks two runs updated,
// o(A, B) = |A ∩ B| / |A| (one-sided, so it is compared with the |B| / N a random set of A's size would
// share with B), with the intersection over union |A ∩ B| / |A ∪ B| besides.
//
// Differs from the paper: an entry counts as changed when its float32 value differs at all (the paper
// uses a tolerance, 1e-5, against bfloat16 rounding); only the linear weights are compared (embeddings
// and norms are not), and the reference sets are the earlier stages of the same run, not other runs.
// A stage's set is taken from the weights at its start and end, so an adapter that does not merge
// changes nothing here.

import type { LinearInfo } from '../model/types.js';

/** One bit per entry of each layer, set where the stage changed it. */
export type UpdateSet = Map<string, Uint32Array>;

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function countBits(bits: Uint32Array): number {
  let c = 0;
  for (const w of bits) c += popcount(w);
  return c;
}

/** The entries of each layer (present with the same size before and after) whose value differs. */
export function updateSet(layers: readonly LinearInfo[], before: ReadonlyMap<string, Float32Array>, after: ReadonlyMap<string, Float32Array>): UpdateSet {
  const out: UpdateSet = new Map();
  for (const l of layers) {
    const a = before.get(l.name);
    const b = after.get(l.name);
    if (a === undefined || b === undefined || a.length !== b.length || a.length !== l.out * l.in) continue;
    const bits = new Uint32Array(Math.ceil(a.length / 32));
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]!) && Number.isNaN(b[i]!))) bits[i >>> 5]! |= 1 << (i & 31);
    out.set(l.name, bits);
  }
  return out;
}

export interface UpdateDensity {
  changed: number;
  entries: number;
  /** changed / entries (0 without entries). */
  density: number;
  /** Per layer: changed / entries. */
  layers: Record<string, number>;
}

/** How many entries the set holds, of how many, overall and per layer; `sizes` are the layers' entry counts. */
export function updateDensity(set: UpdateSet, sizes: ReadonlyMap<string, number>): UpdateDensity {
  let changed = 0;
  let entries = 0;
  const layers: Record<string, number> = {};
  for (const [n, bits] of set) {
    const c = countBits(bits);
    const size = sizes.get(n)!;
    changed += c;
    entries += size;
    layers[n] = size === 0 ? 0 : c / size;
  }
  return { changed, entries, density: entries === 0 ? 0 : changed / entries, layers };
}

export interface UpdateOverlap {
  /** |A ∩ B| and |A ∪ B| over the layers both sets cover, |A| and |B| over those layers, N their entries. */
  intersection: number;
  union: number;
  a: number;
  b: number;
  entries: number;
  /** |A ∩ B| / |A ∪ B| (0 when both are empty). */
  iou: number;
  /** o(A, B) = |A ∩ B| / |A| and o(B, A) = |A ∩ B| / |B| (0 for an empty set). */
  overlap: number;
  reverse: number;
  /** What o(A, B) and o(B, A) would be for sets of the same sizes drawn at random: |B| / N and |A| / N. */
  chance: number;
  chanceReverse: number;
}

/** The overlap of two update sets over the layers both cover; `sizes` are the layers' entry counts. */
export function updateOverlap(a: UpdateSet, b: UpdateSet, sizes: ReadonlyMap<string, number>): UpdateOverlap {
  let inter = 0;
  let union = 0;
  let na = 0;
  let nb = 0;
  let entries = 0;
  for (const [n, x] of a) {
    const y = b.get(n);
    if (y === undefined || y.length !== x.length) continue;
    entries += sizes.get(n)!;
    for (let w = 0; w < x.length; w++) {
      inter += popcount(x[w]! & y[w]!);
      union += popcount(x[w]! | y[w]!);
      na += popcount(x[w]!);
      nb += popcount(y[w]!);
    }
  }
  return {
    intersection: inter,
    union,
    a: na,
    b: nb,
    entries,
    iou: union === 0 ? 0 : inter / union,
    overlap: na === 0 ? 0 : inter / na,
    reverse: nb === 0 ? 0 : inter / nb,
    chance: entries === 0 ? 0 : nb / entries,
    chanceReverse: entries === 0 ? 0 : na / entries,
  };
}

/** What the report keeps of one stage's update set. */
export interface UpdateSetRecord {
  stage: number;
  label: string;
  changed: number;
  entries: number;
  density: number;
  /** Against each earlier measured stage of this process, the overlap of this stage's set (A) with its (B). */
  overlaps: ({ with: string } & Omit<UpdateOverlap, 'a' | 'b'>)[];
}

/** The stage kinds whose updates are measured: those that train the model's weights after it exists. */
export const MEASURED_KINDS: readonly string[] = ['train', 'adapt', 'distill'];
/** ctx.snapshots key of the weights at the start of the running measured stage (rides in mid-stage checkpoints). */
export const UPDATE_BASE = -2;
/** Models above this many parameters are not measured (the stage-start copy would double the weights' memory). */
export const MAX_MEASURED_PARAMS = 2 ** 26;

interface Tracked {
  label: string;
  set: UpdateSet;
}

/**
 * Called by the runner around a measured stage: `start` keeps the stage-start weights (unless a resumed
 * checkpoint already holds them), `finish` compares them with the weights now, logs an 'update-set'
 * event, appends to the report, and keeps the set for the overlaps of later stages of this process.
 */
export class UpdateTracker {
  readonly #sets: Tracked[] = [];

  start(ctx: { snapshots: Map<number, Map<string, Float32Array>>; paramValues(): Map<string, Float32Array>; model: { numParams(): number }; report: { notes: string[] } }, resumed: boolean): void {
    if (resumed) return;
    if (ctx.model.numParams() > MAX_MEASURED_PARAMS) return;
    ctx.snapshots.set(UPDATE_BASE, ctx.paramValues());
  }

  finish(
    ctx: {
      snapshots: Map<number, Map<string, Float32Array>>;
      paramValues(): Map<string, Float32Array>;
      linears(): LinearInfo[];
      report: { notes: string[]; updateSets?: UpdateSetRecord[] };
      log: { event(e: Record<string, unknown>): void };
    },
    stage: number,
    label: string,
  ): void {
    const base = ctx.snapshots.get(UPDATE_BASE);
    ctx.snapshots.delete(UPDATE_BASE);
    if (base === undefined) {
      ctx.report.notes.push(`${label}: its update set was not measured (the model is above ${MAX_MEASURED_PARAMS.toLocaleString('en-US')} parameters, or the run resumed from a checkpoint without the stage-start weights)`);
      return;
    }
    const layers = ctx.linears();
    const sizes = new Map(layers.map((l) => [l.name, l.out * l.in]));
    const set = updateSet(layers, base, ctx.paramValues());
    const d = updateDensity(set, sizes);
    const overlaps = this.#sets.map((t) => {
      const { a: _a, b: _b, ...o } = updateOverlap(set, t.set, sizes);
      return { with: t.label, ...o };
    });
    const record: UpdateSetRecord = { stage, label, changed: d.changed, entries: d.entries, density: d.density, overlaps };
    // stages measured before a resume are in the report but their sets were in the earlier process's memory
    const lost = (ctx.report.updateSets ?? []).filter((r) => !this.#sets.some((t) => t.label === r.label)).map((r) => r.label);
    if (lost.length > 0) ctx.report.notes.push(`${label}: its overlap with ${lost.join(', ')} was not measured (the run resumed after ${lost.length === 1 ? 'that stage' : 'those stages'}; update sets are kept in memory only)`);
    (ctx.report.updateSets ??= []).push(record);
    ctx.log.event({ event: 'update-set', ...record, layers: d.layers });
    this.#sets.push({ label, set });
  }
}
