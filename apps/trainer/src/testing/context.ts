// Test helpers: a run context on a fresh model for a resolved recipe (no run folder, quiet log), and a
// 2:4 magnitude prune of its linear weights with the masks set.
import { join } from 'node:path';
import { maskFromTensor } from '@sparse/masks';
import { tensor } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import type { chooseBackend } from '../backend.js';
import type { Batch } from '../data/dataset.js';
import { createModel } from '../model/index.js';
import type { ModelSpec } from '../model/types.js';
import type { ResolvedRecipe } from '../recipe/schema.js';
import { RunContext } from '../run/context.js';
import { loadRunData } from '../run/data.js';
import { RunLog } from '../run/log.js';
import { silent } from './resume.js';

let logs = 0;

/** A RunContext for `recipe` on a fresh model of `spec` (vocab from the recipe's data) drawn with `seed`; the metrics log goes to a new file in `dir`. */
export function testContext(recipe: ResolvedRecipe, spec: Omit<ModelSpec, 'vocab'>, dir: string, backend: Awaited<ReturnType<typeof chooseBackend>>, seed: number): RunContext {
  const data = loadRunData(recipe.data);
  const model = createModel({ ...spec, vocab: data.main.tokenizer.vocabSize } as ModelSpec, { seed });
  return new RunContext(recipe, dir, model, data, new RunLog(join(dir, `context-${logs++}.jsonl`), 'quiet', { stdout: silent, stderr: silent }), backend);
}

/** Zeroes the two smallest |w| of every group of 4 in each linear weight and sets the matching masks. */
export function prune2of4(ctx: RunContext): void {
  for (const l of ctx.linears()) {
    const p = ctx.model.params[l.name]!;
    const w = Float32Array.from(p.dataSync() as Float32Array);
    for (let g = 0; g < w.length; g += 4) {
      const order = [0, 1, 2, 3].sort((a, b) => Math.abs(w[g + b]!) - Math.abs(w[g + a]!));
      w[g + order[2]!] = 0;
      w[g + order[3]!] = 0;
    }
    p.assign(tf.tensor(w, p.shape));
    ctx.setMask(l.name, maskFromTensor(tensor(w, [l.out, l.in])));
  }
}

/** The loss gradient of weight `name` on each batch, by tf.grad with that weight as the function's input. */
export function weightGradientsOf(ctx: RunContext, batches: readonly Batch[], name: string): Float32Array[] {
  const p = ctx.model.params[name]!;
  return batches.map((b) =>
    tf.tidy(() => {
      const ids = tf.tensor2d(b.inputs, [b.batch, b.len], 'int32');
      const targets = tf.tensor2d(b.targets, [b.batch, b.len], 'int32');
      const f = (w: tf.Tensor) => ctx.model.loss(ids, targets, { weight: (n, q) => (n === name ? w : q) });
      return Float32Array.from(tf.grad(f)(p).dataSync() as Float32Array);
    }),
  );
}
