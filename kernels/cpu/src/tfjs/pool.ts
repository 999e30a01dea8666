// Recycled output storage for the 'sparse-cpu' backend. Every kernel output used to be a fresh
// Float32Array: above a few hundred KiB the allocator maps new pages for it, and the kernel's first
// write into each page faults (tens of thousands of faults per training step at d 256). The pool
// keeps the storage of disposed outputs and hands it to the next output of the same length.
//
// A buffer may be recycled only while nothing outside the backend can see it. Its life:
//   out   handed to a kernel by `float32` (or `copy`), not yet a tensor's storage;
//   live  the storage of exactly one tensor (`attach`, called by the backend's write);
//   free  back in the pool after that tensor's storage was released (`release`).
// Anything that could let a second party hold the array ends the tracking for good (`escape`): the
// backend's readSync (dataSync and friends return the storage itself), a second tensor made over
// the same array, a view of part of it, or storage moved in from outside. An escaped buffer is left
// to the garbage collector, as every output was before.
//
// Buffers below MIN_POOLED_ELEMENTS are not pooled (the allocator serves them from memory it
// already has). The free buffers together stay below the larger of 64 MiB and the most pooled
// storage that was ever in use at once (a training step frees about what its forward pass held,
// and the next step asks for the same arrays again), and below SPARSE_CPU_POOL_MB (default 2048;
// 0 turns the pool off). Above that the oldest free buffers are dropped first.
// SPARSE_CPU_POOL_POISON=1 fills every array handed out with NaN: a kernel that leaves an element
// unwritten then shows it (the tests run the kernels so).

/** Outputs smaller than this many floats (64 KiB) are plain allocations. */
export const MIN_POOLED_ELEMENTS = 16_384;

const DEFAULT_LIMIT_MB = 2048;
const FLOOR_BYTES = 64 * 2 ** 20;

type State = 'out' | 'live';

function limitFromEnv(): number {
  const raw = typeof process === 'undefined' ? undefined : process.env.SPARSE_CPU_POOL_MB;
  if (raw === undefined || raw.trim() === '') return DEFAULT_LIMIT_MB * 2 ** 20;
  const mb = Number(raw);
  // a bad value keeps the default rather than failing the backend's registration
  return Number.isFinite(mb) && mb >= 0 ? Math.floor(mb * 2 ** 20) : DEFAULT_LIMIT_MB * 2 ** 20;
}

/** Whether `a` spans its whole ArrayBuffer (a view of part of a buffer is never recycled). */
function whole(a: ArrayBufferView): a is Float32Array {
  return a instanceof Float32Array && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !(a.buffer instanceof SharedArrayBuffer);
}

export interface OutputPoolStats {
  /** Buffers handed out from the free lists since the last reset. */
  reused: number;
  /** Pooled-size buffers allocated fresh since the last reset. */
  allocated: number;
  /** Bytes now held in the free lists. */
  freeBytes: number;
  /** Bytes of pooled-size buffers now handed out or owned by one tensor. */
  trackedBytes: number;
  /** The most trackedBytes ever reached. */
  peakTrackedBytes: number;
  /** The cap on freeBytes (SPARSE_CPU_POOL_MB or setLimit). */
  limitBytes: number;
}

/** The recycling rules above; one instance serves the process (`outputPool`). */
export class OutputPool {
  private readonly state = new WeakMap<ArrayBufferLike, State>();
  /** Free buffers by length, oldest first, each with the number of the release that freed it. */
  private readonly free = new Map<number, { a: Float32Array; seq: number }[]>();
  private releases = 0;
  private freeBytes = 0;
  private trackedBytes = 0;
  private peakTrackedBytes = 0;
  private reused = 0;
  private allocated = 0;
  private limitBytes: number;
  /** Fill every array handed out without `zero` with NaN (tests: a kernel must write each element). */
  poison = typeof process !== 'undefined' && process.env.SPARSE_CPU_POOL_POISON === '1';

  constructor(limitBytes = limitFromEnv()) {
    this.limitBytes = limitBytes;
  }

  private track(a: Float32Array): void {
    this.state.set(a.buffer, 'out');
    this.trackedBytes += a.byteLength;
    if (this.trackedBytes > this.peakTrackedBytes) this.peakTrackedBytes = this.trackedBytes;
  }

  private untrack(buffer: ArrayBufferLike): void {
    if (this.state.delete(buffer)) this.trackedBytes -= buffer.byteLength;
  }

  /** A Float32Array of length n for a kernel output: recycled contents unless `zero`. */
  float32(n: number, zero = false): Float32Array {
    if (n < MIN_POOLED_ELEMENTS || this.limitBytes === 0) {
      const plain = new Float32Array(n);
      if (this.poison && !zero) plain.fill(Number.NaN);
      return plain;
    }
    const list = this.free.get(n);
    const a = list?.pop()?.a;
    if (a !== undefined) {
      if (list!.length === 0) this.free.delete(n);
      this.freeBytes -= a.byteLength;
      this.reused++;
      if (zero) a.fill(0);
      else if (this.poison) a.fill(Number.NaN);
      this.track(a);
      return a;
    }
    this.allocated++;
    const fresh = new Float32Array(n);
    if (this.poison && !zero) fresh.fill(Number.NaN);
    this.track(fresh);
    return fresh;
  }

  /** A pooled copy of `src` (a kernel that must leave its input's storage untouched). */
  copy(src: Float32Array): Float32Array {
    const a = this.float32(src.length);
    a.set(src);
    return a;
  }

  /** `values` becomes one tensor's storage (the backend's write). A second owner ends the tracking. */
  attach(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const s = this.state.get(values.buffer);
    if (s === undefined) return;
    if (s === 'out' && whole(values)) this.state.set(values.buffer, 'live');
    else this.untrack(values.buffer);
  }

  /** Someone outside the backend may hold `values` (or a view of its buffer): never recycle it. */
  escape(values: unknown): void {
    if (ArrayBuffer.isView(values)) this.untrack(values.buffer);
  }

  /** True when `values` is the storage of exactly one tensor and nobody else can see it. */
  isPrivate(values: unknown): boolean {
    return ArrayBuffer.isView(values) && whole(values) && this.state.get(values.buffer) === 'live';
  }

  /** A kernel's scratch array from `float32` that never became a tensor: back to the free lists. */
  recycle(scratch: Float32Array): void {
    if (whole(scratch) && this.state.get(scratch.buffer) === 'out') this.state.set(scratch.buffer, 'live');
    this.release(scratch);
  }

  /** The tensor owning `values` released it: back to the free lists when it is private. */
  release(values: unknown): void {
    if (!this.isPrivate(values)) return;
    const a = values as Float32Array;
    this.untrack(a.buffer);
    const cap = Math.min(this.limitBytes, Math.max(FLOOR_BYTES, this.peakTrackedBytes));
    if (a.byteLength > cap) return;
    while (this.freeBytes + a.byteLength > cap) this.evictOldest();
    let list = this.free.get(a.length);
    if (list === undefined) this.free.set(a.length, (list = []));
    list.push({ a, seq: this.releases++ });
    this.freeBytes += a.byteLength;
  }

  private evictOldest(): void {
    // the oldest free buffer heads one of the per-length lists (a few dozen lengths in a model)
    let oldest: { a: Float32Array; seq: number }[] | undefined;
    for (const list of this.free.values()) if (oldest === undefined || list[0]!.seq < oldest[0]!.seq) oldest = list;
    const { a } = oldest!.shift()!;
    if (oldest!.length === 0) this.free.delete(a.length);
    this.freeBytes -= a.byteLength;
  }

  /** Drops every free buffer (the backend's dispose). */
  clear(): void {
    this.free.clear();
    this.freeBytes = 0;
  }

  /** Sets the cap on the free buffers' bytes (0 turns pooling off), dropping free buffers above it. */
  setLimit(bytes: number): void {
    this.limitBytes = Math.max(0, Math.floor(bytes));
    while (this.freeBytes > this.limitBytes) this.evictOldest();
  }

  stats(reset = false): OutputPoolStats {
    const { reused, allocated, freeBytes, trackedBytes, peakTrackedBytes, limitBytes } = this;
    if (reset) this.reused = this.allocated = 0;
    return { reused, allocated, freeBytes, trackedBytes, peakTrackedBytes, limitBytes };
  }
}

const POOL_KEY = Symbol.for('@sparse/kernels-cpu.outputPool');

/** The process's pool (one per process even when the package is loaded twice). */
export const outputPool: OutputPool = ((globalThis as unknown as Record<symbol, OutputPool | undefined>)[POOL_KEY] ??= new OutputPool());
