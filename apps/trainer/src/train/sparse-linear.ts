// The sparse training path of masked linear layers. A layer whose weight W [out, in] trains through a
// fixed mask M keeps its active entries packed: a trainable [nnz] variable of values in the CSR order of
// the mask (row-major), the dense W variable holding the same numbers with zeros elsewhere only when
// synced. Its product and gradients run on the packed entries through @sparse/tensor's kernel registry
// (native kernels when registered):
//   forward   Y  = X Wᵀ            linearCSR
//   backward  dX = dY W            linearCSRGradInput (the transposed sparse product)
//             dW = (dYᵀ X) at M    sddmmCSR (only the active entries)
// and Adam updates the [nnz] values only. This is the same arithmetic as the dense path's forward through
// W ⊙ M (whose gradient is exactly zero off the mask and whose moments there stay zero), in another
// summation order, so losses agree to rounding.
//
// Checkpoints do not depend on the path: before one is written the values are scattered into the dense
// variables and the packed Adam moments into dense-shaped moments under the weight's own key (zeros off
// the mask, as the dense path has them); a resumed stage gathers them back.

import * as tf from '@tensorflow/tfjs-core';
import { maskIndices, type Mask } from '@sparse/masks';
import { ArgumentError, getKernel, type CSRLayout } from '@sparse/tensor';
import type { ForwardHooks, LinearInfo } from '../model/types.js';
import type { AdamState, NamedAdam } from './adam.js';

/** A mask's active entries in CSR order: row pointers, column indices, and their flat (row-major) positions. */
export interface CSRPattern {
  shape: [number, number];
  indptr: Int32Array;
  indices: Int32Array;
  flat: Int32Array;
}

export function csrPattern(mask: Mask): CSRPattern {
  const [out, inp] = mask.shape as [number, number];
  const flat = maskIndices(mask);
  const indptr = new Int32Array(out + 1);
  const indices = new Int32Array(flat.length);
  for (let p = 0; p < flat.length; p++) {
    const k = flat[p]!;
    indptr[Math.floor(k / inp) + 1]!++;
    indices[p] = k % inp;
  }
  for (let r = 0; r < out; r++) indptr[r + 1]! += indptr[r]!;
  return { shape: [out, inp], indptr, indices, flat };
}

const layout = (p: CSRPattern, values: Float32Array): CSRLayout<'float32'> => ({ format: 'csr', shape: p.shape, dtype: 'float32', indptr: p.indptr, indices: p.indices, values });

/**
 * x [T, in] times the sparse weight's transpose, [T, out], differentiable in x and in the packed values
 * (their gradient is the SDDMM of dY and X at the pattern).
 */
export function sparseLinearProduct(x: tf.Tensor2D, values: tf.Tensor1D, p: CSRPattern): tf.Tensor2D {
  const [out, inp] = p.shape;
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, vs, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const tokens = xs.shape[0]!;
    const y = new Float32Array(tokens * out);
    if (tokens > 0) {
      getKernel('linearCSR')({ w: layout(p, vs.dataSync() as Float32Array), tokens, alpha: 1, x: xs.dataSync() as Float32Array, xOffset: 0, ldx: inp, beta: 0, y, yOffset: 0, ldy: out });
    }
    save([xs, vs]);
    return {
      value: tf.tensor2d(y, [tokens, out]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sv] = saved as [tf.Tensor, tf.Tensor];
        const dyd = dy.dataSync() as Float32Array;
        const dx = new Float32Array(tokens * inp);
        const dv = new Float32Array(p.flat.length);
        if (tokens > 0) {
          getKernel('linearCSRGradInput')({ w: layout(p, sv.dataSync() as Float32Array), tokens, alpha: 1, dy: dyd, dyOffset: 0, lddy: out, beta: 0, dx, dxOffset: 0, lddx: inp });
          getKernel('sddmmCSR')({ pattern: p, tokens, alpha: 1, dy: dyd, dyOffset: 0, lddy: out, x: sx.dataSync() as Float32Array, xOffset: 0, ldx: inp, beta: 0, out: dv, outOffset: 0 });
        }
        return [tf.tensor2d(dx, [tokens, inp]), tf.tensor1d(dv)];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(x, values) as tf.Tensor2D;
}

interface PackedLayer {
  pattern: CSRPattern;
  values: tf.Variable;
}

/** The packed layers of one stage: their variables, the forward hook, and the syncs with the dense weights. */
export class SparseLinears {
  readonly #layers = new Map<string, PackedLayer>();
  /** The variable maps handed out by variables(): repack puts a layer's new variable in them when its count changes. */
  readonly #views: Map<string, tf.Variable>[] = [];

  /** `layers`: the masked weights (by name) that train packed; `params` the model's variables. */
  constructor(
    private readonly params: Readonly<Record<string, tf.Variable>>,
    layers: ReadonlyArray<{ info: LinearInfo; mask: Mask }>,
  ) {
    for (const { info, mask } of layers) this.#layers.set(info.name, this.#pack(info.name, mask));
  }

  /** The optimizer key of a weight's packed values. */
  static key(name: string): string {
    return `${name}#packed`;
  }

  names(): string[] {
    return [...this.#layers.keys()];
  }

  /** Active entries of each packed layer. */
  counts(): Map<string, number> {
    return new Map([...this.#layers].map(([n, l]) => [n, l.pattern.flat.length]));
  }

  #pack(name: string, mask: Mask): PackedLayer {
    const pattern = csrPattern(mask);
    const w = this.params[name]!.dataSync() as Float32Array;
    const packed = Float32Array.from(pattern.flat, (k) => w[k]!);
    return { pattern, values: tf.variable(tf.tensor1d(packed), true) };
  }

  /** The stage's hooks with the packed layers' products computed sparse (other layers keep `base`). */
  hooks(base: ForwardHooks): ForwardHooks {
    return {
      ...base,
      linearProduct: (info, x) => {
        const l = this.#layers.get(info.name);
        return l ? sparseLinearProduct(x, l.values as tf.Tensor1D, l.pattern) : base.linearProduct?.(info, x);
      },
    };
  }

  /**
   * The stage's trainable variables: the packed values in place of their dense weights. The map is kept
   * up to date: when repack changes a layer's count its entry becomes the new variable (the training
   * loop reads the map again after each beforeStep).
   */
  variables(dense: ReadonlyMap<string, tf.Variable>): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [k, v] of dense) {
      const l = this.#layers.get(k);
      out.set(l ? SparseLinears.key(k) : k, l ? l.values : v);
    }
    this.#views.push(out);
    return out;
  }

  /** Writes the packed values into the dense weights (zeros off the mask). */
  syncDense(): void {
    for (const [name, l] of this.#layers) {
      const p = this.params[name]!;
      const dense = new Float32Array(p.size);
      const v = l.values.dataSync() as Float32Array;
      l.pattern.flat.forEach((k, i) => (dense[k] = v[i]!));
      tf.tidy(() => p.assign(tf.tensor(dense, p.shape)));
    }
  }

  /**
   * A layer's mask changed (a DST rewiring, which has already set the dense weight): packs it again from
   * the dense weight, and carries the Adam moments of entries active before and after; entries that
   * become active start at zero moments, and entries that left take theirs with them (what
   * NamedAdam.resetEntries gives the dense path). With the same count the values go into the same
   * variable; with another (SRigL's neuron ablation: active neurons × ⌊budget / active neurons⌋ varies
   * with the neurons ablated) a new variable of the new size replaces it in the maps variables() gave
   * out, and the old one is disposed.
   */
  repack(name: string, mask: Mask, optimizer?: NamedAdam): void {
    const l = this.#layers.get(name);
    if (l === undefined) return;
    const pattern = csrPattern(mask);
    const [out, inp] = pattern.shape;
    if (out !== l.pattern.shape[0] || inp !== l.pattern.shape[1]) throw new ArgumentError(`sparse path: ${name}'s mask is [${out}, ${inp}], its packed layer [${l.pattern.shape.join(', ')}]`);
    const w = this.params[name]!.dataSync() as Float32Array;
    const packed = Float32Array.from(pattern.flat, (k) => w[k]!);
    if (pattern.flat.length === l.pattern.flat.length) tf.tidy(() => l.values.assign(tf.tensor1d(packed)));
    else {
      const old = l.values;
      l.values = tf.variable(tf.tensor1d(packed), true);
      const key = SparseLinears.key(name);
      for (const view of this.#views) if (view.get(key) === old) view.set(key, l.values);
      old.dispose();
    }
    const size = out * inp;
    optimizer?.remapMoments(SparseLinears.key(name), (old) => {
      const dense = scatter(l.pattern, old, size);
      return Float32Array.from(pattern.flat, (k) => dense[k]!);
    });
    l.pattern = pattern;
  }

  /** Adam state with the packed layers' moments laid out dense under the weights' own keys (for a checkpoint). */
  denseState(state: AdamState): AdamState {
    return this.#convert(state, SparseLinears.key, (n) => n, (l, data) => ({ data: scatter(l.pattern, data, l.pattern.shape[0] * l.pattern.shape[1]), shape: [...l.pattern.shape] }));
  }

  /** The reverse of denseState (a resumed stage). */
  packedState(state: AdamState): AdamState {
    return this.#convert(state, (n) => n, SparseLinears.key, (l, data) => ({ data: Float32Array.from(l.pattern.flat, (k) => data[k]!), shape: [l.pattern.flat.length] }));
  }

  #convert(state: AdamState, from: (name: string) => string, to: (name: string) => string, move: (l: PackedLayer, data: Float32Array) => { data: Float32Array; shape: number[] }): AdamState {
    const m = { ...state.m };
    const v = { ...state.v };
    const since = state.since ? { ...state.since } : undefined;
    for (const [name, l] of this.#layers) {
      const [src, dst] = [from(name), to(name)];
      for (const moments of [m, v]) {
        const x = moments[src];
        if (x === undefined) continue;
        delete moments[src];
        moments[dst] = move(l, x.data);
      }
      if (since?.[src] !== undefined) {
        since[dst] = since[src]!;
        delete since[src];
      }
    }
    return { t: state.t, m, v, ...(since ? { since } : {}) };
  }

  dispose(): void {
    for (const l of this.#layers.values()) l.values.dispose();
    this.#layers.clear();
  }
}

function scatter(p: CSRPattern, values: Float32Array, size: number): Float32Array {
  const dense = new Float32Array(size);
  p.flat.forEach((k, i) => (dense[k] = values[i]!));
  return dense;
}
