// Mustafar-style KV-cache pruning: each new token's key and value vectors are pruned per kv head by
// magnitude (the largest-|x| entries of the headDim vector survive) and stored in a bitmap layout — one bit
// per entry (1 = kept) plus the kept values packed row after row and the start of each row's values. The
// layout is the one the native attentionBitmapKV kernels read.

import { ArgumentError, getKernel, ShapeError } from '@sparse/tensor';

/** The storage of a bitmap KV cache (views of exactly `positions` rows). */
export interface BitmapKV {
  kvHeads: number;
  headDim: number;
  positions: number;
  /** [positions, kvHeads, ceil(headDim / 8)] bytes, LSB first, 1 = entry kept; padding bits zero. */
  kBits: Uint8Array;
  vBits: Uint8Array;
  /** Kept values in (position, kvHead, dim) order. */
  kValues: Float32Array;
  vValues: Float32Array;
  /** [positions * kvHeads + 1]: row r = position * kvHeads + kvHead has its values at [start[r], start[r + 1]). */
  kStart: Int32Array;
  vStart: Int32Array;
}

export interface BitmapKVCacheOptions {
  kvHeads: number;
  headDim: number;
  /** Fraction of each key row pruned, in [0, 1): keep headDim - round(sparsity · headDim) entries. */
  kSparsity: number;
  /** Same for values (default kSparsity). */
  vSparsity?: number;
  /** Positions to reserve room for (grows by doubling past it). */
  capacity?: number;
}

/** Entries kept per row of headDim at a sparsity: headDim - round(sparsity · headDim), at least 1. */
export function keptPerRow(headDim: number, sparsity: number): number {
  return Math.max(1, headDim - Math.round(sparsity * headDim));
}

/**
 * Indices of the `keep` largest |x[offset + c]| for c in [0, d), in increasing index order (ties to the
 * lower index). `scratch` (2 · d floats) avoids allocating per call.
 */
export function topMagnitude(x: ArrayLike<number>, offset: number, d: number, keep: number, scratch: Float32Array = new Float32Array(2 * d)): Int32Array {
  const out = new Int32Array(Math.min(keep, d));
  if (out.length === 0) return out;
  const abs = scratch.subarray(0, d);
  const sorted = scratch.subarray(d, 2 * d);
  for (let c = 0; c < d; c++) abs[c] = Math.abs(x[offset + c]!);
  sorted.set(abs);
  sorted.sort();
  // The keep-th largest magnitude: everything above it is kept, then entries equal to it by index.
  const threshold = sorted[d - out.length]!;
  let ties = out.length;
  for (let c = 0; c < d; c++) if (abs[c]! > threshold) ties--;
  let n = 0;
  for (let c = 0; c < d && n < out.length; c++) {
    const a = abs[c]!;
    if (a > threshold || (a === threshold && ties-- > 0)) out[n++] = c;
  }
  return out;
}

/**
 * The sparsity at which a bitmap cache of this headDim takes as many bytes as the dense float32 one: per
 * row, ceil(d / 8) bit bytes + 4 bytes of row start + 4 (1 - s) d value bytes against 4 d, so s = (ceil(d /
 * 8) + 4) / (4 d). Below it the bitmap layout is larger.
 */
export function bitmapBreakEvenSparsity(headDim: number): number {
  return (Math.ceil(headDim / 8) + 4) / (4 * headDim);
}

function checkUnitOpen(name: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ArgumentError(`BitmapKVCache: ${name} must be a number in [0, 1), got ${String(v)}`);
  return v;
}

/** An appendable per-token magnitude-pruned KV cache in the bitmap layout. */
export class BitmapKVCache implements BitmapKV {
  readonly kvHeads: number;
  readonly headDim: number;
  readonly kSparsity: number;
  readonly vSparsity: number;
  /** Entries kept per (position, kv head) row of K and of V. */
  readonly kKeep: number;
  readonly vKeep: number;
  private rows = 0;
  private cap: number;
  private kb: Uint8Array;
  private vb: Uint8Array;
  private kv: Float32Array;
  private vv: Float32Array;
  private ks: Int32Array;
  private vs: Int32Array;
  private readonly scratch: Float32Array;

  constructor(opts: BitmapKVCacheOptions) {
    if (opts === null || typeof opts !== 'object') throw new ArgumentError('BitmapKVCache: expected { kvHeads, headDim, kSparsity }');
    for (const f of ['kvHeads', 'headDim'] as const) {
      const v = opts[f];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ArgumentError(`BitmapKVCache: ${f} must be a positive integer, got ${String(v)}`);
    }
    const capacity = opts.capacity ?? 16;
    if (!Number.isInteger(capacity) || capacity < 1) throw new ArgumentError(`BitmapKVCache: capacity must be a positive integer, got ${String(capacity)}`);
    this.kvHeads = opts.kvHeads;
    this.headDim = opts.headDim;
    this.kSparsity = checkUnitOpen('kSparsity', opts.kSparsity);
    this.vSparsity = checkUnitOpen('vSparsity', opts.vSparsity ?? opts.kSparsity);
    this.kKeep = keptPerRow(this.headDim, this.kSparsity);
    this.vKeep = keptPerRow(this.headDim, this.vSparsity);
    this.cap = capacity;
    this.scratch = new Float32Array(2 * this.headDim);
    const rowBytes = Math.ceil(this.headDim / 8);
    this.kb = new Uint8Array(capacity * this.kvHeads * rowBytes);
    this.vb = new Uint8Array(capacity * this.kvHeads * rowBytes);
    this.kv = new Float32Array(capacity * this.kvHeads * this.kKeep);
    this.vv = new Float32Array(capacity * this.kvHeads * this.vKeep);
    this.ks = new Int32Array(capacity * this.kvHeads + 1);
    this.vs = new Int32Array(capacity * this.kvHeads + 1);
  }

  get positions(): number {
    return this.rows;
  }
  get kBits(): Uint8Array {
    return this.kb.subarray(0, this.rows * this.kvHeads * Math.ceil(this.headDim / 8));
  }
  get vBits(): Uint8Array {
    return this.vb.subarray(0, this.rows * this.kvHeads * Math.ceil(this.headDim / 8));
  }
  get kValues(): Float32Array {
    return this.kv.subarray(0, this.ks[this.rows * this.kvHeads]!);
  }
  get vValues(): Float32Array {
    return this.vv.subarray(0, this.vs[this.rows * this.kvHeads]!);
  }
  get kStart(): Int32Array {
    return this.ks.subarray(0, this.rows * this.kvHeads + 1);
  }
  get vStart(): Int32Array {
    return this.vs.subarray(0, this.rows * this.kvHeads + 1);
  }

  private grow(): void {
    const cap = this.cap * 2;
    const rowBytes = Math.ceil(this.headDim / 8);
    const widen = <T extends Uint8Array | Float32Array | Int32Array>(a: T, n: number, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.kb = widen(this.kb, cap * this.kvHeads * rowBytes, (n) => new Uint8Array(n));
    this.vb = widen(this.vb, cap * this.kvHeads * rowBytes, (n) => new Uint8Array(n));
    this.kv = widen(this.kv, cap * this.kvHeads * this.kKeep, (n) => new Float32Array(n));
    this.vv = widen(this.vv, cap * this.kvHeads * this.vKeep, (n) => new Float32Array(n));
    this.ks = widen(this.ks, cap * this.kvHeads + 1, (n) => new Int32Array(n));
    this.vs = widen(this.vs, cap * this.kvHeads + 1, (n) => new Int32Array(n));
    this.cap = cap;
  }

  /** Prunes and appends one position: k and v are [kvHeads, headDim]. */
  append(k: Float32Array, v: Float32Array): void {
    const { kvHeads, headDim: d } = this;
    for (const [name, x] of [['k', k], ['v', v]] as const) {
      if (!(x instanceof Float32Array) || x.length !== kvHeads * d) throw new ShapeError(`BitmapKVCache.append: ${name} must be a Float32Array [kvHeads, headDim] = ${kvHeads * d} values, got ${x?.length}`);
    }
    if (this.rows === this.cap) this.grow();
    const rowBytes = Math.ceil(d / 8);
    for (let g = 0; g < kvHeads; g++) {
      const r = this.rows * kvHeads + g;
      this.ks[r + 1] = this.writeRow(k, g * d, this.kKeep, this.kb, r * rowBytes, this.kv, this.ks[r]!);
      this.vs[r + 1] = this.writeRow(v, g * d, this.vKeep, this.vb, r * rowBytes, this.vv, this.vs[r]!);
    }
    this.rows++;
  }

  private writeRow(x: Float32Array, off: number, keep: number, bits: Uint8Array, bitOff: number, values: Float32Array, at: number): number {
    for (const c of topMagnitude(x, off, this.headDim, keep, this.scratch)) {
      bits[bitOff + (c >> 3)]! |= 1 << (c & 7);
      values[at++] = x[off + c]!;
    }
    return at;
  }

  /** Appends several positions: k and v are [positions, kvHeads, headDim]. */
  appendMany(k: Float32Array, v: Float32Array): void {
    const row = this.kvHeads * this.headDim;
    if (k.length % row !== 0 || v.length !== k.length) throw new ShapeError(`BitmapKVCache.appendMany: k and v must be [positions, kvHeads, headDim] of equal length, got ${k.length} and ${v.length}`);
    for (let p = 0; p < k.length / row; p++) this.append(k.subarray(p * row, (p + 1) * row), v.subarray(p * row, (p + 1) * row));
  }

  /** Bytes the stored layout takes: bits, kept values and row starts of K and V. */
  bytes(): number {
    return this.kBits.byteLength + this.vBits.byteLength + this.kValues.byteLength + this.vValues.byteLength + this.kStart.byteLength + this.vStart.byteLength;
  }

  /** Bytes of the same cache stored dense in float32: 2 · positions · kvHeads · headDim · 4. */
  denseBytes(): number {
    return 2 * this.rows * this.kvHeads * this.headDim * 4;
  }

  /** The pruned cache expanded: k and v [positions, kvHeads, headDim] with pruned entries zero. */
  toDense(): { k: Float32Array; v: Float32Array } {
    return { k: expandBitmap(this, 'k'), v: expandBitmap(this, 'v') };
  }

  /** Fraction of entries pruned so far (K and V together). */
  sparsity(): number {
    const total = 2 * this.rows * this.kvHeads * this.headDim;
    return total === 0 ? 0 : 1 - (this.kValues.length + this.vValues.length) / total;
  }
}

/** Expands the K or V side of a bitmap cache to [positions, kvHeads, headDim]. */
export function expandBitmap(cache: BitmapKV, which: 'k' | 'v'): Float32Array {
  const { kvHeads, headDim: d, positions } = cache;
  const bits = which === 'k' ? cache.kBits : cache.vBits;
  const values = which === 'k' ? cache.kValues : cache.vValues;
  const start = which === 'k' ? cache.kStart : cache.vStart;
  const rowBytes = Math.ceil(d / 8);
  const out = new Float32Array(positions * kvHeads * d);
  for (let r = 0; r < positions * kvHeads; r++) {
    let at = start[r]!;
    for (let c = 0; c < d; c++) if ((bits[r * rowBytes + (c >> 3)]! >> (c & 7)) & 1) out[r * d + c] = values[at++]!;
    if (at !== start[r + 1]) throw new ShapeError(`expandBitmap: row ${r} has ${at - start[r]!} set bits but ${start[r + 1]! - start[r]!} values`);
  }
  return out;
}

/**
 * Decode attention over a bitmap cache: q [heads, headDim], one query per head; query head h reads kv head
 * floor(h / (heads / kvHeads)); softmax over every position; returns [heads, headDim]. Runs the kernel
 * registry's attentionBitmapKV (the native kernel when @sparse/kernels-cpu is loaded, else the reference,
 * which visits kept entries only and accumulates in float64).
 */
export function bitmapKVAttention(cache: BitmapKV, q: Float32Array, heads: number, opts: { scale?: number } = {}): Float32Array {
  const { kvHeads, headDim: d, positions } = cache;
  if (!Number.isInteger(heads) || heads < 1 || heads % kvHeads !== 0) throw new ShapeError(`bitmapKVAttention: heads must be a positive multiple of kvHeads (${kvHeads}), got ${String(heads)}`);
  if (!(q instanceof Float32Array) || q.length !== heads * d) throw new ShapeError(`bitmapKVAttention: q must be a Float32Array [heads, headDim] = ${heads * d} values, got ${q?.length}`);
  const out = new Float32Array(heads * d);
  if (positions === 0) return out;
  const { kBits, kValues, kStart, vBits, vValues, vStart } = cache;
  getKernel('attentionBitmapKV')({ heads, kvHeads, headDim: d, positions, q, qOffset: 0, kBits, vBits, kValues, vValues, kStart, vStart, out, outOffset: 0, scale: opts.scale ?? 1 / Math.sqrt(d) });
  return out;
}
