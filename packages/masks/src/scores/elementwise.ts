// Scores computed element by element from a weight and its gradient-like inputs. Each is a pure function
// that returns a new contiguous float32 tensor of the weight's shape; larger means more important unless
// the doc says otherwise. Inputs may be any real dtype and any strides; products are formed in float64 and
// rounded once to float32.

import { ArgumentError, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { checkNoNaN, checkSameShape, flatValues } from '../internal.js';

interface Input {
  name: string;
  t: Tensor;
}

/** Reads and checks the inputs (equal shapes, no NaN), then fills out[i] = fn(i, values). */
function elementwise(where: string, inputs: Input[], fn: (i: number, v: (Float32Array | Float64Array)[]) => number): Float32Tensor {
  const first = inputs[0]!;
  const values = inputs.map(({ name, t }) => {
    const v = flatValues(t, where, name);
    if (t !== first.t) checkSameShape(where, first.name, first.t.shape, name, t.shape);
    checkNoNaN(v, t.shape, where, name);
    return v;
  });
  const n = values[0]!.length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = fn(i, values);
  return tensor(out, first.t.shape);
}

/** |W|: magnitude pruning's score. */
export function magnitudeScores(weight: Tensor): Float32Tensor {
  return elementwise('magnitudeScores', [{ name: 'weight', t: weight }], (i, [w]) => Math.abs(w![i]!));
}

/** |G|: gradient magnitude (SAFT selects the entries with the largest gradients for sparse fine-tuning). */
export function gradientScores(gradient: Tensor): Float32Tensor {
  return elementwise('gradientScores', [{ name: 'gradient', t: gradient }], (i, [g]) => Math.abs(g![i]!));
}

/** |W ⊙ G|: SNIP's connection sensitivity (Lee et al. 2019), the first-order loss change of removing w. */
export function snipScores(weight: Tensor, gradient: Tensor): Float32Tensor {
  return elementwise('snipScores', [{ name: 'weight', t: weight }, { name: 'gradient', t: gradient }], (i, [w, g]) => Math.abs(w![i]! * g![i]!));
}

export interface TaylorOptions {
  /** 1 (default): |g w|. 2: |-g w + ½ F w²| with F the Fisher diagonal standing in for the Hessian diagonal. */
  order?: 1 | 2;
  /** The Fisher diagonal (mean of squared gradients, see `fisherScores`); required for order 2. */
  fisher?: Tensor;
}

/**
 * Taylor importance: the estimated loss change |ΔL| when w is set to zero (δw = -w).
 * - order 1: |ΔL| ≈ |g w| (the first-order term; equal to SNIP's score for a single gradient).
 * - order 2: |ΔL| ≈ |-g w + ½ F_ii w²|, the second-order expansion with the Hessian diagonal approximated
 *   by the empirical Fisher diagonal F (mean of g² over samples), as in Optimal Brain Damage-style criteria.
 */
export function taylorScores(weight: Tensor, gradient: Tensor, opts: TaylorOptions = {}): Float32Tensor {
  const order = opts.order ?? 1;
  const inputs = [{ name: 'weight', t: weight }, { name: 'gradient', t: gradient }];
  if (order === 1) return elementwise('taylorScores', inputs, (i, [w, g]) => Math.abs(w![i]! * g![i]!));
  if (order !== 2) throw new ArgumentError(`taylorScores: order must be 1 or 2, got ${String(order)}`);
  if (opts.fisher === undefined) throw new ArgumentError('taylorScores: order 2 needs opts.fisher (the Fisher diagonal)');
  inputs.push({ name: 'fisher', t: opts.fisher });
  return elementwise('taylorScores', inputs, (i, [w, g, f]) => {
    const x = w![i]!;
    return Math.abs(-g![i]! * x + 0.5 * f![i]! * x * x);
  });
}

/**
 * GraSP (Wang et al. 2020): S = -W ⊙ (H g), with H g the Hessian-gradient product of the loss (computing it
 * needs the model, so it is an input). GraSP removes the entries with the LARGEST S (they least reduce
 * gradient flow), so select with `topKMask(s, k, { largest: false })`. Signed; not an absolute value.
 */
export function graspScores(weight: Tensor, hessianGradient: Tensor): Float32Tensor {
  return elementwise('graspScores', [{ name: 'weight', t: weight }, { name: 'hessianGradient', t: hessianGradient }], (i, [w, hg]) => -w![i]! * hg![i]!);
}

/**
 * SynFlow (Tanaka et al. 2020): |W ⊙ dR/dW| with R = 1^T (prod_l |W_l|) 1, the synaptic-flow objective
 * (evaluate the network with every weight replaced by its absolute value on an all-ones input and sum the
 * output). `synflowGradient` is dR/dW at |W|; `synflowGradients` in @sparse/masks/tfjs computes it.
 */
export function synflowScores(weight: Tensor, synflowGradient: Tensor): Float32Tensor {
  return elementwise('synflowScores', [{ name: 'weight', t: weight }, { name: 'synflowGradient', t: synflowGradient }], (i, [w, g]) =>
    Math.abs(w![i]! * g![i]!),
  );
}

/**
 * |W - W0|: how far each entry moved from its initial (pre-trained) value. SpIEL drops the active entries
 * that changed least; magnitude-of-change criteria in general.
 */
export function changeMagnitudeScores(weight: Tensor, initial: Tensor): Float32Tensor {
  return elementwise('changeMagnitudeScores', [{ name: 'weight', t: weight }, { name: 'initial', t: initial }], (i, [w, w0]) =>
    Math.abs(w![i]! - w0![i]!),
  );
}
