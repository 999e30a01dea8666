// What every built-in model shares: parameters as tf.Variables built from specs and values, the
// loss from the logits, and bookkeeping.

import * as tf from '@tensorflow/tfjs-core';
import { ArgumentError } from '@sparse/tensor';
import { ensureGradients } from './gradients.js';
import { Forward, sizeOfShape, type ParamSpec } from './layers.js';
import { crossEntropy } from './ops.js';
import type { Architecture, ForwardHooks, LanguageModel, LinearInfo, ModelSpec } from './types.js';

// tfjs variable names must be unique per engine; several models may live side by side
let nextModelId = 0;

/** Checks that `values` has exactly the parameters of `specs`, each of the right size. */
export function checkValues(what: string, specs: readonly ParamSpec[], values: ReadonlyMap<string, Float32Array>): void {
  const known = new Set(specs.map((s) => s.name));
  for (const spec of specs) {
    const v = values.get(spec.name);
    if (!v) throw new ArgumentError(`${what}: no value for parameter ${spec.name}`);
    if (v.length !== sizeOfShape(spec.shape)) {
      throw new ArgumentError(`${what}: ${spec.name} has ${v.length} values, expected shape [${spec.shape.join(', ')}]`);
    }
  }
  for (const name of values.keys()) if (!known.has(name)) throw new ArgumentError(`${what}: ${name} is not a parameter of this model`);
}

export abstract class BaseModel implements LanguageModel {
  abstract readonly architecture: Architecture;
  abstract readonly spec: Readonly<ModelSpec>;
  abstract readonly blocks: number;
  readonly params: Readonly<Record<string, tf.Variable>>;
  /** The prunable linear layers, in evaluation order. */
  protected readonly linearInfos: readonly LinearInfo[];

  protected constructor(what: string, specs: readonly ParamSpec[], values: ReadonlyMap<string, Float32Array>, linears: readonly LinearInfo[]) {
    ensureGradients();
    checkValues(what, specs, values);
    const id = nextModelId++;
    const params: Record<string, tf.Variable> = {};
    for (const spec of specs) params[spec.name] = tf.variable(tf.tensor(values.get(spec.name)!, spec.shape), true, `${what}/${spec.name}/${id}`);
    this.params = Object.freeze(params);
    this.linearInfos = Object.freeze(linears.map((l) => Object.freeze({ ...l })));
  }

  linears(): LinearInfo[] {
    return this.linearInfos.map((l) => ({ ...l }));
  }

  /** One forward pass's view of the parameters, applying `hooks`. */
  protected pass(hooks?: ForwardHooks): Forward {
    return new Forward(this.params, this.linearInfos as LinearInfo[], hooks);
  }

  abstract logits2d(ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor2D;

  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, hooks?: ForwardHooks): tf.Scalar {
    const [b, t] = targets.shape;
    return crossEntropy(this.logits2d(ids, hooks), tf.reshape(targets, [b * t]) as tf.Tensor1D);
  }

  /** Logits [B,T,V]. */
  forward(ids: tf.Tensor2D, hooks?: ForwardHooks): tf.Tensor3D {
    const [b, t] = ids.shape;
    return tf.reshape(this.logits2d(ids, hooks), [b, t, this.spec.vocab]);
  }

  variables(): tf.Variable[] {
    return Object.values(this.params);
  }

  numParams(): number {
    return this.variables().reduce((n, v) => n + v.size, 0);
  }

  /** Current parameter values, copied out (what createModel's `values` takes). */
  values(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, v] of Object.entries(this.params)) out.set(name, Float32Array.from(v.dataSync() as Float32Array));
    return out;
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}
