// SpIEL-style reselection of a sparse delta's support (Ansell et al., "Scaling Sparse Fine-Tuning to
// Large Language Models"): drop the active entries that moved least, regrow the inactive entries with
// the largest accumulated gradient. Dropped entries return to W (value 0); grown ones start at 0.
import { ArgumentError, ShapeError } from '@sparse/tensor';
import { validateSparseDelta, type SparseDelta } from './delta.js';

/**
 * The `k` items of [0, n) with the largest key (ties to the lower item), found with a size-k heap so a
 * 4096 x 4096 layer needs no full sort. Items with a NaN key are never chosen. Returned sorted by item.
 */
export function topKByKey(n: number, k: number, key: (item: number) => number, include: (item: number) => boolean = () => true): Int32Array {
  // Heap root = the worst kept item: smaller key, or equal key and larger item.
  const heap = new Int32Array(k);
  const keys = new Float64Array(k);
  let size = 0;
  const worse = (a: number, b: number) => keys[a]! < keys[b]! || (keys[a] === keys[b] && heap[a]! > heap[b]!);
  const swap = (a: number, b: number) => {
    const t = heap[a]!;
    heap[a] = heap[b]!;
    heap[b] = t;
    const u = keys[a]!;
    keys[a] = keys[b]!;
    keys[b] = u;
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let w = i;
      if (l < size && worse(l, w)) w = l;
      if (r < size && worse(r, w)) w = r;
      if (w === i) return;
      swap(i, w);
      i = w;
    }
  };
  if (k === 0) return new Int32Array(0);
  for (let item = 0; item < n; item++) {
    if (!include(item)) continue;
    const x = key(item);
    if (Number.isNaN(x)) continue;
    if (size < k) {
      heap[size] = item;
      keys[size] = x;
      for (let i = size++; i > 0; ) {
        const p = (i - 1) >> 1;
        if (!worse(i, p)) break;
        swap(i, p);
        i = p;
      }
    } else if (x > keys[0]!) {
      // equal keys keep the lower item, which came first
      heap[0] = item;
      keys[0] = x;
      down(0);
    }
  }
  return heap.slice(0, size).sort();
}

export interface ReselectSupportOptions {
  /** Entries to drop and regrow. Give this or `fraction`. */
  count?: number;
  /** Fraction of the active entries to drop and regrow (rounded down). */
  fraction?: number;
}

export interface ReselectSupportResult {
  delta: SparseDelta;
  /** For each new entry, its position in the old delta, or -1 when grown (feed to SparseAdam.remap). */
  sources: Int32Array;
  /** Flat indices dropped and grown, sorted. */
  dropped: Int32Array;
  grown: Int32Array;
}

/**
 * One reselection. Drops the `count` active entries with the smallest |value| (the value is the change
 * from W; ties to the lower index), then grows the `count` entries that were inactive before this call
 * with the largest |score| (ties to the lower index), where `score` is the dense row-major accumulated
 * gradient [out · in]. A just-dropped entry is not a candidate, so it cannot come straight back with a
 * reset state. When fewer candidates exist, fewer are grown. SpIEL's reselection of a delta's support:
 * @sparse/masks' `dropAndRegrow` is the same idea on a Mask (its own scores, rounding and ties).
 */
export function reselectSupport(delta: SparseDelta, score: ArrayLike<number>, opts: ReselectSupportOptions): ReselectSupportResult {
  const where = 'reselectSupport';
  validateSparseDelta(delta, where);
  const size = delta.shape[0] * delta.shape[1];
  if (score.length !== size) throw new ShapeError(`${where}: score has ${score.length} entries, the weight [${delta.shape.join(', ')}] has ${size}`);
  const nnz = delta.indices.length;
  if ((opts.count === undefined) === (opts.fraction === undefined)) throw new ArgumentError(`${where}: give exactly one of count and fraction`);
  if (opts.fraction !== undefined && !(opts.fraction >= 0 && opts.fraction <= 1)) throw new ArgumentError(`${where}: fraction must be in [0, 1], got ${opts.fraction}`);
  const count = opts.count ?? Math.floor(opts.fraction! * nnz);
  if (!Number.isInteger(count) || count < 0 || count > nnz) throw new ArgumentError(`${where}: count must be an integer in [0, ${nnz}] (the active entries), got ${count}`);

  const { indices, values } = delta;
  // Drop: the positions whose -|value| is largest.
  const dropPos = topKByKey(nnz, count, (p) => -Math.abs(values[p]!));
  const active = new Uint8Array(Math.ceil(size / 8));
  for (let p = 0; p < nnz; p++) active[indices[p]! >>> 3]! |= 1 << (indices[p]! & 7);
  const grown = topKByKey(size, count, (f) => Math.abs(score[f]!), (f) => ((active[f >>> 3]! >>> (f & 7)) & 1) === 0);

  const dropped = new Int32Array(dropPos.length);
  const isDropped = new Uint8Array(nnz);
  dropPos.forEach((p, j) => {
    dropped[j] = indices[p]!;
    isDropped[p] = 1;
  });
  // Merge the survivors (sorted) with the grown entries (sorted).
  const n = nnz - dropPos.length + grown.length;
  const outIdx = new Int32Array(n);
  const outVal = new Float32Array(n);
  const sources = new Int32Array(n);
  let p = 0;
  let g = 0;
  for (let k = 0; k < n; k++) {
    while (p < nnz && isDropped[p]) p++;
    if (p < nnz && (g >= grown.length || indices[p]! < grown[g]!)) {
      outIdx[k] = indices[p]!;
      outVal[k] = values[p]!;
      sources[k] = p++;
    } else {
      outIdx[k] = grown[g++]!;
      sources[k] = -1;
    }
  }
  return { delta: { shape: [delta.shape[0], delta.shape[1]], indices: outIdx, values: outVal }, sources, dropped, grown };
}

/** Random initial support: `count` distinct flat indices of a [out, in] weight, sorted. */
export function randomSupport(shape: readonly [number, number], count: number, rng: { sample(k: number, n: number): Int32Array }): Int32Array {
  const size = shape[0] * shape[1];
  if (!Number.isInteger(count) || count < 0 || count > size) throw new ArgumentError(`randomSupport: count must be an integer in [0, ${size}], got ${count}`);
  return rng.sample(count, size).sort();
}
