// The model behaviour of an installed attention record (an attention stage's method of @sparse/attention):
// block methods (sparge, topk-blocks, seer) predict a per-head tile mask from each layer's q and k and
// the forward runs masked attention through it, intersected with causal and the model's own pattern;
// kv-cache methods (mustafar) prune each (token, kv head) row of K and V to its largest-|x| entries
// right after they are computed. RunContext.hooks() adds these hooks; counts go to `counts()` while
// an evaluation asks for them.

import * as tf from '@tensorflow/tfjs-core';
import { getAttentionMethod, topMagnitude, type AttentionMethod, type SeerGate } from '@sparse/attention';
import { ArgumentError, parseConfig } from '@sparse/tensor';
import { causalLayout, layoutAllows, layoutFromPredicate, type AttentionLayout } from '../../model/attention-op.js';
import type { ForwardHooks } from '../../model/types.js';
import type { AttentionCounts, AttentionRecord, AttentionState } from '../../run/context.js';

/** The record's method and its parsed config (throws naming the method when either is wrong). */
export function attentionMethodOf(rec: Pick<AttentionRecord, 'method' | 'config'>, where = 'attention'): { def: AttentionMethod; config: unknown } {
  const def = getAttentionMethod(rec.method);
  return { def, config: parseConfig(def.schema, rec.config, `${where}: attention method '${rec.method}'`) };
}

/** A state's gates as SeerGate (typed arrays), by layer. */
export function gatesOf(state: AttentionState | undefined): SeerGate[] | undefined {
  return state?.gates?.map((g) => ({ ...g, wq: Float32Array.from(g.wq), wk: Float32Array.from(g.wk) }));
}

/** A gate as plain JSON (for checkpoints and exports). */
export function gateToJSON(g: SeerGate): NonNullable<AttentionState['gates']>[number] {
  return { heads: g.heads, kvHeads: g.kvHeads, headDim: g.headDim, gateDim: g.gateDim, blockSize: g.blockSize, wq: Array.from(g.wq), wk: Array.from(g.wk) };
}

/** 0/1 mask [rows, d] keeping the `keep` largest |x| of each row (ties to the lower index). */
export function magnitudeRowMask(x: Float32Array, rows: number, d: number, keep: number): Float32Array {
  const m = new Float32Array(rows * d);
  const scratch = new Float32Array(2 * d);
  for (let r = 0; r < rows; r++) for (const c of topMagnitude(x, r * d, d, keep, scratch)) m[r * d + c] = 1;
  return m;
}

const layoutCache = new WeakMap<object, Map<string, AttentionLayout>>();
const NO_BASE = {};

/** Causal ∧ the base layout (one-head), at tile side `blockSize` (cached per base object). */
function allowedLayout(t: number, blockSize: number, base: AttentionLayout | undefined): AttentionLayout {
  const key = base ?? NO_BASE;
  let m = layoutCache.get(key);
  if (m === undefined) layoutCache.set(key, (m = new Map()));
  const k = `${t}:${blockSize}`;
  let l = m.get(k);
  if (l === undefined) {
    if (base !== undefined && base.heads !== 1) throw new ArgumentError('attention stage: a per-head base layout cannot be intersected');
    l = base === undefined ? causalLayout(t, blockSize) : layoutFromPredicate(t, blockSize, (i, j) => j <= i && layoutAllows(base, i, j));
    m.set(k, l);
  }
  return l;
}

/**
 * A predicted per-head tile keep [heads, nb, nb] (nonzero = computed) intersected with the allowed
 * layout: a kept tile takes the allowed layout's code (and its shared element bits decide inside partial tiles).
 */
export function intersectTiles(tiles: Uint8Array, heads: number, allowed: AttentionLayout): AttentionLayout {
  const { nb } = allowed;
  const out = new Uint8Array(heads * nb * nb);
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < nb * nb; t++) out[h * nb * nb + t] = tiles[h * nb * nb + t] !== 0 ? allowed.tiles[t]! : 0;
  }
  return { seq: allowed.seq, blockSize: allowed.blockSize, heads, nb, tiles: out, ...(allowed.elementBits ? { elementBits: allowed.elementBits } : {}) };
}

/** The forward hooks of an attention record; `counts()` receives per-layer counts while it returns a value. */
export function attentionHooks(rec: AttentionRecord, counts: () => AttentionCounts | undefined = () => undefined): Pick<ForwardHooks, 'attentionMask' | 'kv'> {
  const { def, config } = attentionMethodOf(rec, `attention of stage ${rec.stage}`);
  if (def.target === 'kv-cache') {
    const keepOf = new Map<number, { k: number; v: number }>();
    const keeps = (d: number) => {
      let r = keepOf.get(d);
      if (r === undefined) {
        const cache = def.createCache(config as never, { kvHeads: 1, headDim: d });
        r = { k: cache.kKeep, v: cache.vKeep };
        keepOf.set(d, r);
      }
      return r;
    };
    return {
      kv: (block, k, v) => {
        const [rows, d] = k.shape;
        const keep = keeps(d);
        const prune = (x: tf.Tensor2D, n: number): tf.Tensor2D => (n >= d ? x : tf.mul<tf.Tensor2D>(x, tf.tensor2d(magnitudeRowMask(x.dataSync() as Float32Array, rows, d, n), [rows, d])));
        const c = counts();
        if (c) {
          const e = c.kv.get(block) ?? { kKept: 0, vKept: 0, entries: 0, rows: 0, headDim: d };
          e.kKept += rows * Math.min(keep.k, d);
          e.vKept += rows * Math.min(keep.v, d);
          e.entries += rows * d;
          e.rows += rows;
          c.kv.set(block, e);
        }
        return { k: prune(k, keep.k), v: prune(v, keep.v) };
      },
    };
  }
  const gates = gatesOf(rec.state);
  if (def.needs?.includes('gate') && gates === undefined) throw new ArgumentError(`attention of stage ${rec.stage}: ${rec.method} needs its trained gates (state.gates)`);
  return {
    attentionMask: (block, q, k, b, t, base) => {
      const heads = q.shape[0] / b;
      const kvHeads = k.shape[0] / b;
      const hd = q.shape[2];
      const qa = q.dataSync() as Float32Array;
      const ka = k.dataSync() as Float32Array;
      const shape = { heads, kvHeads, seq: t, headDim: hd };
      const gate = gates?.[block];
      if (gates !== undefined && gate === undefined) throw new ArgumentError(`attention of stage ${rec.stage}: no gate for layer ${block} (${gates.length} gates)`);
      const c = counts();
      const out: AttentionLayout[] = [];
      for (let s = 0; s < b; s++) {
        const pred = def.predict(config as never, { shape, q: qa.subarray(s * heads * t * hd, (s + 1) * heads * t * hd), k: ka.subarray(s * kvHeads * t * hd, (s + 1) * kvHeads * t * hd) }, gate ? { gate } : undefined);
        const m = pred.mask;
        const allowed = allowedLayout(t, m.blockSize, base?.[base.length === 1 ? 0 : s]);
        const tiles = m.heads === heads ? m.tiles : Uint8Array.from({ length: heads * m.nb * m.nb }, (_, i) => m.tiles[i % (m.nb * m.nb)]!);
        const layout = intersectTiles(tiles, heads, allowed);
        out.push(layout);
        if (c) {
          const e = c.tiles.get(block) ?? { computed: 0, total: 0 };
          for (const x of layout.tiles) if (x !== 0) e.computed++;
          const causal = allowedLayout(t, m.blockSize, undefined);
          for (const x of causal.tiles) if (x !== 0) e.total += heads;
          c.tiles.set(block, e);
        }
      }
      return out;
    },
  };
}
