// Whole structures of the trainer's models that structured pruning removes together: an MLP hidden unit
// (its row of the up and gate projections, its column of the down projection) or an attention head (its
// rows of the query, key and value projections, its columns of the output projection). Each block's
// structures of one kind form a set; structure g of a set covers, in every member layer, the `size`
// consecutive rows (or columns) starting at start + g · size.
//
// Heads: GPT's fused c_attn holds q, k, v as three row ranges of d. Llama's k and v projections belong to
// a head only when every query head has its own (kvHeads = heads); with grouped-query attention they
// are shared by several query heads and stay unpruned (a head is then its query rows and output columns).

import { isKept, maskAll, maskFromPredicate, and, type Mask } from '@sparse/masks';
import type { LinearInfo } from '../../model/types.js';

export interface StructureMember {
  layer: LinearInfo;
  axis: 'row' | 'column';
  start: number;
  size: number;
}

export interface StructureSet {
  block: number;
  /** Structures in the set. */
  count: number;
  members: StructureMember[];
}

/** MLP hidden units of every block with a dense MLP (expert MLPs are not covered). */
export function neuronSets(linears: readonly LinearInfo[]): StructureSet[] {
  const blocks = [...new Set(linears.map((l) => l.block))].sort((a, b) => a - b);
  const sets: StructureSet[] = [];
  for (const b of blocks) {
    const of = (role: string) => linears.find((l) => l.block === b && l.role === role && l.expert === undefined);
    const up = of('mlp.up');
    const down = of('mlp.down');
    if (!up || !down) continue;
    const gate = of('mlp.gate');
    sets.push({
      block: b,
      count: up.out,
      members: [{ layer: up, axis: 'row', start: 0, size: 1 }, ...(gate ? [{ layer: gate, axis: 'row' as const, start: 0, size: 1 }] : []), { layer: down, axis: 'column', start: 0, size: 1 }],
    });
  }
  return sets;
}

/** Attention heads of every block, for a model with `heads` heads of width d / heads. */
export function headSets(linears: readonly LinearInfo[], heads: number): StructureSet[] {
  const blocks = [...new Set(linears.map((l) => l.block))].sort((a, b) => a - b);
  const sets: StructureSet[] = [];
  for (const b of blocks) {
    const of = (role: string) => linears.find((l) => l.block === b && l.role === role);
    const out = of('attn.out');
    if (!out) continue;
    const hd = out.in / heads;
    const members: StructureMember[] = [{ layer: out, axis: 'column', start: 0, size: hd }];
    const qkv = of('attn.qkv');
    if (qkv) {
      // GPT: q, k, v stacked as rows [0, d), [d, 2d), [2d, 3d)
      const d = qkv.out / 3;
      for (const start of [0, d, 2 * d]) members.push({ layer: qkv, axis: 'row', start, size: hd });
    } else {
      const q = of('attn.q');
      if (!q) continue;
      members.push({ layer: q, axis: 'row', start: 0, size: hd });
      for (const role of ['attn.k', 'attn.v']) {
        const kv = of(role);
        if (kv && kv.out === q.out) members.push({ layer: kv, axis: 'row', start: 0, size: hd });
      }
    }
    sets.push({ block: b, count: heads, members });
  }
  return sets;
}

/** The structure (or -1) a flat entry of a member's layer belongs to. */
function structureOf(m: StructureMember, count: number, k: number): number {
  const idx = (m.axis === 'row' ? Math.floor(k / m.layer.in) : k % m.layer.in) - m.start;
  if (idx < 0 || idx >= count * m.size) return -1;
  return Math.floor(idx / m.size);
}

/** Σ w² over each structure's entries (all members), from the layers' current weights. */
export function structureSquares(set: StructureSet, weights: (layer: string) => Float32Array): Float64Array {
  const out = new Float64Array(set.count);
  for (const m of set.members) {
    const w = weights(m.layer.name);
    for (let k = 0; k < w.length; k++) {
      const g = structureOf(m, set.count, k);
      if (g >= 0) out[g]! += w[k]! * w[k]!;
    }
  }
  return out;
}

/** Which structures of a set are alive under the masks: some entry of the first member's rows/columns is kept. */
export function aliveStructures(set: StructureSet, masks: ReadonlyMap<string, Mask>): Uint8Array {
  const alive = new Uint8Array(set.count);
  const m = set.members[0]!;
  const mask = masks.get(m.layer.name);
  const size = m.layer.out * m.layer.in;
  for (let k = 0; k < size; k++) {
    const g = structureOf(m, set.count, k);
    if (g >= 0 && (!mask || isKept(mask, k))) alive[g] = 1;
  }
  return alive;
}

/** Each member layer's mask with the structures not in `keep` removed (and whatever `masks` already removed). */
export function structureMasks(sets: readonly StructureSet[], keep: readonly Uint8Array[], masks: ReadonlyMap<string, Mask>): Map<string, Mask> {
  const out = new Map<string, Mask>();
  sets.forEach((set, i) => {
    for (const m of set.members) {
      const l = m.layer;
      const current = out.get(l.name) ?? masks.get(l.name) ?? maskAll([l.out, l.in]);
      const cut = maskFromPredicate([l.out, l.in], (k) => {
        const g = structureOf(m, set.count, k);
        return g < 0 || keep[i]![g] === 1;
      });
      out.set(l.name, and(current, cut));
    }
  });
  return out;
}

