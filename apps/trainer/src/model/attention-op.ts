// Masked attention as a tfjs op: the forward runs the kernel registry's block-sparse attention on
// the host (saving each query's log-sum-exp), the gradient its backward kernel, wrapped in a
// tf.customGrad, so training and evaluation go through the kernels and gradients reach only the
// kept (query, key) pairs. Which pairs are kept is an AttentionLayout per sequence: tiles of
// blockSize x blockSize (0 skip, 1 full, 2 partial) and the element mask that decides inside
// partial tiles. A model spec's `attention` field (a static pattern of @sparse/attention) gives one
// layout shared by the batch; ForwardHooks.attention gives one per sequence (prefix sharing).

import * as tf from '@tensorflow/tfjs-core';
import { patternFromSpec, toBlockMask } from '@sparse/attention';
import { ArgumentError, ConfigError, getKernel } from '@sparse/tensor';
import { softmaxRows } from './ops.js';

/**
 * Which keys each query of one sequence attends to: @sparse/attention's BlockMask with one head
 * (tiles [nb, nb]: 0 skip, 1 full, 2 partial; elementBits [seq, seq] LSB-first, read in partial tiles).
 */
export interface AttentionLayout {
  seq: number;
  blockSize: number;
  heads: number;
  nb: number;
  tiles: Uint8Array;
  elementBits?: Uint8Array;
}

/** May query i attend to key j under a (one-head) layout. */
export function layoutAllows(layout: AttentionLayout, i: number, j: number): boolean {
  const { seq, blockSize, nb } = layout;
  const t = layout.tiles[Math.floor(i / blockSize) * nb + Math.floor(j / blockSize)];
  if (t !== 2) return t === 1;
  const p = i * seq + j;
  return ((layout.elementBits![p >> 3]! >> (p & 7)) & 1) === 1;
}

/** The layout whose element mask is `allowed(i, j)` (tiles classified element by element). */
export function layoutFromPredicate(seq: number, blockSize: number, allowed: (i: number, j: number) => boolean): AttentionLayout {
  if (!Number.isInteger(seq) || seq < 1) throw new ArgumentError(`attention layout: seq must be a positive integer, got ${seq}`);
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new ArgumentError(`attention layout: blockSize must be a positive integer, got ${blockSize}`);
  const nb = Math.ceil(seq / blockSize);
  const tiles = new Uint8Array(nb * nb);
  const bits = new Uint8Array(Math.ceil((seq * seq) / 8));
  let partial = false;
  for (let bi = 0; bi < nb; bi++) {
    for (let bj = 0; bj < nb; bj++) {
      let kept = 0;
      let total = 0;
      for (let i = bi * blockSize; i < Math.min(seq, (bi + 1) * blockSize); i++) {
        for (let j = bj * blockSize; j < Math.min(seq, (bj + 1) * blockSize); j++) {
          total++;
          if (allowed(i, j)) {
            kept++;
            const p = i * seq + j;
            bits[p >> 3]! |= 1 << (p & 7);
          }
        }
      }
      const t = kept === 0 ? 0 : kept === total ? 1 : 2;
      if (t === 2) partial = true;
      tiles[bi * nb + bj] = t;
    }
  }
  return partial ? { seq, blockSize, heads: 1, nb, tiles, elementBits: bits } : { seq, blockSize, heads: 1, nb, tiles };
}

/** The plain causal layout. */
export function causalLayout(seq: number, blockSize = 16): AttentionLayout {
  return layoutFromPredicate(seq, blockSize, (i, j) => j <= i);
}

/** The additive mask [seq, seq] of a layout (0 kept, -1e9 dropped): what a dense forward adds to its scores. */
export function additiveMask(layout: AttentionLayout): Float32Array {
  const { seq } = layout;
  const out = new Float32Array(seq * seq);
  for (let i = 0; i < seq; i++) for (let j = 0; j < seq; j++) if (!layoutAllows(layout, i, j)) out[i * seq + j] = -1e9;
  return out;
}

/** The attention of one batch: a layout per sequence (or one for all) and, optionally, each token's position id. */
export interface BatchAttention {
  /** One layout shared by every sequence, or one per sequence of the batch; each of the batch's length. */
  layouts: readonly AttentionLayout[];
  /** Position ids [B*T] (row-major [B, T]); default 0..T-1 in every row. */
  positions?: Int32Array;
}

/** `heads`: the op's head count, when a layout may also give one mask per head (tiles [heads, nb, nb]). */
function checkLayouts(layouts: readonly AttentionLayout[], b: number, t: number, heads?: number): void {
  if (layouts.length !== 1 && layouts.length !== b) throw new ArgumentError(`attention: ${layouts.length} layouts for a batch of ${b} sequences (give one, or one per sequence)`);
  for (const l of layouts) {
    if (l.seq !== t) throw new ArgumentError(`attention: a layout for ${l.seq} tokens on sequences of ${t}`);
    if (l.heads !== 1 && l.heads !== heads) throw new ArgumentError(`attention: a layout is one mask shared by every head (heads 1)${heads === undefined ? '' : ` or one per head (heads ${heads})`}, got ${l.heads}`);
  }
}

/**
 * Masked multi-head attention of q, k, v [B*heads, T, hd] (sequence b's heads are rows b*heads..):
 * each query attends to the keys its sequence's layout keeps (one mask for every head, or tiles per
 * head with heads = `heads`), scores scaled by 1/sqrt(hd). Returns
 * [B*heads, T, hd]; differentiable in q, k and v (the gradient through kept pairs only).
 */
export function maskedAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, layouts: readonly AttentionLayout[]): tf.Tensor3D {
  const [rows, t, hd] = q.shape;
  if (rows % heads !== 0) throw new ArgumentError(`attention: ${rows} head rows are not a multiple of ${heads} heads`);
  const b = rows / heads;
  checkLayouts(layouts, b, t, heads);
  const scale = 1 / Math.sqrt(hd);
  const per = heads * t * hd;
  const layoutOf = (s: number) => layouts[layouts.length === 1 ? 0 : s]!;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qt, kt, vt, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc];
    const qa = qt.dataSync() as Float32Array;
    const ka = kt.dataSync() as Float32Array;
    const va = vt.dataSync() as Float32Array;
    const out = new Float32Array(rows * t * hd);
    const lse = new Float32Array(rows * t);
    const forward = getKernel('blockSparseAttention');
    for (let s = 0; s < b; s++) {
      const l = layoutOf(s);
      const o = s * per;
      forward({
        heads, seq: t, headDim: hd, scale, causal: false, blockSize: l.blockSize, blockMask: l.tiles, ...(l.elementBits ? { elementMask: l.elementBits } : {}),
        q: qa, qOffset: o, k: ka, kOffset: o, v: va, vOffset: o, out, outOffset: o, lse, lseOffset: s * heads * t,
      });
    }
    const value = tf.tensor3d(out, [rows, t, hd]);
    save([qt, kt, vt, value, tf.tensor1d(lse)]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, so, sl] = saved.map((x) => x.dataSync() as Float32Array) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
        const dOut = dy.dataSync() as Float32Array;
        const dq = new Float32Array(sq.length);
        const dk = new Float32Array(sk.length);
        const dv = new Float32Array(sv.length);
        const backward = getKernel('blockSparseAttentionBackward');
        for (let s = 0; s < b; s++) {
          const l = layoutOf(s);
          const o = s * per;
          backward({
            heads, seq: t, headDim: hd, scale, causal: false, blockSize: l.blockSize, blockMask: l.tiles, ...(l.elementBits ? { elementMask: l.elementBits } : {}),
            q: sq, qOffset: o, k: sk, kOffset: o, v: sv, vOffset: o, out: so, outOffset: o, dOut, dOutOffset: o, lse: sl, lseOffset: s * heads * t,
            dq, dqOffset: o, dk, dkOffset: o, dv, dvOffset: o,
          });
        }
        return [tf.tensor3d(dq, [rows, t, hd]), tf.tensor3d(dk, [rows, t, hd]), tf.tensor3d(dv, [rows, t, hd])];
      },
    };
  }) as (q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D) => tf.Tensor3D;
  return op(q, k, v);
}

/**
 * The attention of one forward pass: the hooks' per-batch attention when given (prefix sharing),
 * else the model's static pattern at length `t`, else undefined (the dense causal path).
 */
export function passAttention(pattern: ((seq: number) => AttentionLayout) | undefined, given: BatchAttention | undefined, b: number, t: number): BatchAttention | undefined {
  if (given) {
    checkLayouts(given.layouts, b, t);
    if (given.positions !== undefined && given.positions.length !== b * t) throw new ArgumentError(`attention: ${given.positions.length} position ids for a batch of ${b} x ${t} tokens`);
    return given;
  }
  return pattern ? { layouts: [pattern(t)] } : undefined;
}

/**
 * The same attention with plain tfjs ops: scores plus each sequence's additive mask (0 kept, -1e9
 * dropped), a row softmax, the product with v. Exact and differentiable, dense in cost: the
 * reference the kernel op is tested against. A query needs at least one kept key.
 */
export function denseMaskedAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, layouts: readonly AttentionLayout[]): tf.Tensor3D {
  const [rows, t, hd] = q.shape;
  const b = rows / heads;
  checkLayouts(layouts, b, t);
  const masks = layouts.map(additiveMask);
  const add = new Float32Array(rows * t * t);
  for (let r = 0; r < rows; r++) add.set(masks[masks.length === 1 ? 0 : Math.floor(r / heads)]!, r * t * t);
  const scores = tf.add(tf.matMul(tf.mul(q, 1 / Math.sqrt(hd)), k, false, true), tf.tensor3d(add, [rows, t, t]));
  const probs = tf.reshape(softmaxRows(tf.reshape(scores, [rows * t, t]) as tf.Tensor2D), [rows, t, t]) as tf.Tensor3D;
  return tf.matMul(probs, v);
}

/** A model spec's `attention` field: a static pattern of @sparse/attention (its recipe spec, e.g. { pattern: 'sliding-window', window: 16, sinks: 2, blockSize: 8 }). */
export type AttentionSpec = Record<string, unknown>;

const patternCache = new WeakMap<object, Map<number, AttentionLayout>>();

/** The layout of a spec's pattern at sequence length `seq` (cached per spec object and length). */
export function specLayout(spec: AttentionSpec, seq: number): AttentionLayout {
  let bySeq = patternCache.get(spec);
  if (bySeq === undefined) {
    bySeq = new Map();
    patternCache.set(spec, bySeq);
  }
  let layout = bySeq.get(seq);
  if (layout === undefined) {
    layout = buildSpecLayout(spec, seq);
    bySeq.set(seq, layout);
  }
  return layout;
}

/** Tile side when a spec gives no blockSize. */
export const DEFAULT_ATTENTION_BLOCK = 16;

function buildSpecLayout(spec: AttentionSpec, seq: number): AttentionLayout {
  const p = patternFromSpec(spec, 'attention');
  if (p.positionIds !== undefined || p.pattern.length !== undefined) {
    throw new ArgumentError(`a model's pattern must hold at every length (${p.pattern.kind} is fixed to ${p.pattern.length ?? '?'} tokens); prefix sharing and documents are given per batch (ForwardHooks.attention, the dpo method)`);
  }
  return toBlockMask(p.pattern, { seq, blockSize: p.blockSize ?? DEFAULT_ATTENTION_BLOCK });
}

/**
 * Validates a spec's `attention` field (a model of context `ctx`): a pattern @sparse/attention
 * knows, causal (no query sees a later key: the decoder and the KV cache rely on it). Returns it.
 */
export function checkAttentionSpec(spec: unknown, ctx: number, fail: (field: string, message: string) => never): AttentionSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return fail('attention', `must be an object (a pattern of @sparse/attention), got ${JSON.stringify(spec)}`);
  let layout: AttentionLayout;
  let parsed: AttentionSpec;
  try {
    parsed = patternFromSpec(spec, 'attention').spec as unknown as AttentionSpec;
    layout = buildSpecLayout(parsed, ctx);
  } catch (e) {
    if (e instanceof ConfigError && e.issues.length > 0) {
      const first = e.issues[0]!;
      return fail(['attention', ...first.path.map(String)].join('.'), first.message);
    }
    return fail('attention', (e as Error).message);
  }
  // tiles above the diagonal must be empty; inside the diagonal tiles, look at the elements
  const { nb, blockSize: bs } = layout;
  const later = (i: number, j: number) => fail('attention', `must be causal: query ${i} may attend to the later key ${j} (the decoder's KV cache holds only the past)`);
  for (let bi = 0; bi < nb; bi++) {
    for (let bj = bi + 1; bj < nb; bj++) if (layout.tiles[bi * nb + bj] !== 0) for (let i = bi * bs; i < Math.min(ctx, (bi + 1) * bs); i++) for (let j = bj * bs; j < Math.min(ctx, (bj + 1) * bs); j++) if (layoutAllows(layout, i, j)) return later(i, j);
    for (let i = bi * bs; i < Math.min(ctx, (bi + 1) * bs); i++) {
      for (let j = i + 1; j < Math.min(ctx, (bi + 1) * bs); j++) if (layoutAllows(layout, i, j)) return later(i, j);
      if (!layoutAllows(layout, i, i)) return fail('attention', `every query must see itself; query ${i} does not`);
    }
  }
  return parsed;
}
