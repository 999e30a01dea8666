// What the first-order pruning methods ('movement', 'smp') share: per-layer scores S, a forward pass that
// hands each step's ∂L/∂W' (W' = W ⊙ M, the weight the forward pass uses) to them from the backward pass,
// the update steps of their masks, and a checkpoint form of their float64 sums.
//
// S is @sparse/masks' MovementAccumulator (Σ −α_t W_t ⊙ (∂L/∂W')_t in float64) plus, for a method with a
// penalty on σ(S), a second float64 sum of the penalty's gradient steps (S = movement + penalty).
// ∂L/∂W' is taken before the mask (a straight-through estimator): a pruned entry keeps scoring.

import * as tf from '@tensorflow/tfjs-core';
import { MovementAccumulator, type Mask } from '@sparse/masks';
import { tensor } from '@sparse/tensor';
import type { ForwardHooks, LinearInfo } from '../../model/types.js';
import type { RunContext } from '../../run/context.js';

/** A float64 array as its bytes (a stage state holds Float32Array, Int32Array or Uint8Array). */
export function float64Bytes(x: Float64Array): Uint8Array {
  return new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
}

/** The float64 array whose bytes `b` are (float64Bytes' inverse). */
export function bytesFloat64(b: Uint8Array): Float64Array {
  if (b.byteLength % 8 !== 0) throw new Error(`checkpoint: ${b.byteLength} bytes are not a float64 array`);
  return new Float64Array(Uint8Array.from(b).buffer);
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** How FirstOrderScores rides in a checkpoint's stage state. */
export interface ScoresState {
  /** Per layer: the accumulator's add() count and its float64 sums as bytes. */
  movement: Record<string, { count: number; sum: Uint8Array }>;
  /** Per layer: the penalty's float64 sums as bytes (methods with a penalty). */
  penalty?: Record<string, Uint8Array>;
}

/** The scores of the targeted layers. */
export class FirstOrderScores {
  readonly #movement = new Map<string, MovementAccumulator>();
  readonly #penalty = new Map<string, Float64Array>();
  readonly #shape = new Map<string, number[]>();

  constructor(layers: readonly LinearInfo[], withPenalty: boolean, saved?: ScoresState) {
    for (const l of layers) {
      const shape = [l.out, l.in];
      this.#shape.set(l.name, shape);
      const s = saved?.movement[l.name];
      this.#movement.set(l.name, s ? MovementAccumulator.fromState({ kind: 'movement', shape, count: s.count, sum: Array.from(bytesFloat64(s.sum)) }) : new MovementAccumulator(shape));
      if (withPenalty) {
        const p = saved?.penalty?.[l.name];
        this.#penalty.set(l.name, p ? bytesFloat64(p) : new Float64Array(l.out * l.in));
      }
    }
  }

  /** S += −scale · w ⊙ g (the movement term of one step). */
  addMovement(name: string, w: Float32Array, g: Float32Array, scale: number): void {
    const shape = this.#shape.get(name)!;
    this.#movement.get(name)!.add(tensor(w, shape), tensor(g, shape), scale);
  }

  /** The movement term alone (float32 of its float64 sums). */
  movement(name: string): Float32Array {
    return this.#movement.get(name)!.scores().data as Float32Array;
  }

  /** S += −coef · σ(S)(1 − σ(S)), the gradient step of coef · Σ σ(S) at the current S. */
  addPenalty(name: string, coef: number): void {
    const p = this.#penalty.get(name)!;
    const m = this.movement(name);
    for (let i = 0; i < p.length; i++) {
      const s = sigmoid(m[i]! + p[i]!);
      p[i]! -= coef * s * (1 - s);
    }
  }

  /** S of a layer (movement + penalty). */
  scores(name: string): Float64Array {
    const m = this.movement(name);
    const p = this.#penalty.get(name);
    return Float64Array.from(m, (x, i) => x + (p ? p[i]! : 0));
  }

  state(): ScoresState {
    const movement: ScoresState['movement'] = {};
    for (const [n, a] of this.#movement) {
      const st = a.state();
      movement[n] = { count: st.count, sum: float64Bytes(Float64Array.from(st.sum)) };
    }
    return { movement, ...(this.#penalty.size > 0 ? { penalty: Object.fromEntries([...this.#penalty].map(([n, p]) => [n, float64Bytes(p)])) } : {}) };
  }
}

/**
 * Forward hooks for a first-order method: the targeted layers compute with W ⊙ M (M the run mask; the
 * weight itself before a layer has one), and the backward pass calls `onGrad(name, W, ∂L/∂W')` with the
 * values of that step before the optimizer moves W, while W gets ∂L/∂W' ⊙ M as in masked training. Other
 * layers: the run's masked hooks.
 */
export function scoreTapHooks(ctx: RunContext, layers: readonly LinearInfo[], onGrad: (name: string, w: Float32Array, g: Float32Array) => void): ForwardHooks {
  const base = ctx.hooks({ maskBase: true });
  const targeted = new Set(layers.map((l) => l.name));
  return {
    weight: (name, p) => {
      if (!targeted.has(name)) return base.weight!(name, p);
      const m = ctx.maskTensor(name);
      const f = tf.customGrad((x, save) => {
        const w = x as tf.Tensor;
        (save as tf.GradSaveFunc)([w]);
        return {
          value: m ? tf.mul(w, m) : tf.clone(w),
          gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
            onGrad(name, saved[0]!.dataSync() as Float32Array, dy.dataSync() as Float32Array);
            return m ? tf.mul(dy, m) : dy;
          },
        };
      });
      return f(p);
    },
  };
}

/**
 * Whether masks are recomputed after t steps done: at the ramp's begin, every `every` steps after it
 * (also once the ramp has ended), at its end, and at the end of the stage.
 */
export function isMaskStep(schedule: { begin: number; end: number; every?: number }, steps: number, t: number): boolean {
  if (t < schedule.begin) return false;
  return t === schedule.end || t === steps || (t - schedule.begin) % (schedule.every ?? 1) === 0;
}

/** Throws unless every targeted layer is dense at the start of the stage (the first-order methods prune from dense weights). */
export function refusePruned(ctx: RunContext, layers: readonly LinearInfo[], where: string, name: string): void {
  const pruned = layers.filter((l) => ctx.masks.has(l.name)).map((l) => l.name);
  if (pruned.length > 0) throw new Error(`${where}: ${name} prunes dense layers, but ${pruned.join(', ')} ${pruned.length === 1 ? 'has' : 'have'} a mask already (leave ${pruned.length === 1 ? 'it' : 'them'} out of targets)`);
}

/** The kept count of each layer, a mask or the full size. */
export function keptCounts(ctx: RunContext, layers: readonly LinearInfo[], count: (m: Mask) => number): Record<string, number> {
  return Object.fromEntries(layers.map((l) => [l.name, ctx.masks.has(l.name) ? count(ctx.masks.get(l.name)!) : l.out * l.in]));
}
