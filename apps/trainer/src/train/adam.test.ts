import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { NamedAdam } from './adam.js';

describe('NamedAdam', () => {
  it("matches tfjs's AdamOptimizer step for step, and a restored state continues identically", async () => {
    await tf.setBackend('cpu');
    const init = [0.5, -1.25, 2, 0.01, -0.3, 0.7];
    const gradsAt = (t: number, w: Float32Array) => Float32Array.from(w, (x, i) => Math.sin(t + i) + 0.3 * x);
    const ours = tf.variable(tf.tensor(init, [2, 3]));
    const ref = tf.variable(tf.tensor(init, [2, 3]));
    const adam = new NamedAdam(0.9, 0.95, 1e-8);
    const tfAdam = tf.train.adam(0.05, 0.9, 0.95, 1e-8);
    for (let t = 0; t < 6; t++) {
      const g1 = tf.tensor(gradsAt(t, ours.dataSync() as Float32Array), [2, 3]);
      adam.apply([{ key: 'w', variable: ours, grad: g1 }], 0.05);
      const g2 = tf.tensor(gradsAt(t, ref.dataSync() as Float32Array), [2, 3]);
      tfAdam.applyGradients([{ name: ref.name, tensor: g2 }]);
      g1.dispose();
      g2.dispose();
      const a = ours.dataSync();
      const b = ref.dataSync();
      for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 6);
    }
    // checkpoint, continue both the original and a restored copy: bit-identical
    const saved = adam.state();
    const copy = tf.variable(ours.clone());
    const restored = new NamedAdam(0.9, 0.95, 1e-8);
    restored.load(saved);
    for (let t = 6; t < 9; t++) {
      const g = tf.tensor(gradsAt(t, ours.dataSync() as Float32Array), [2, 3]);
      adam.apply([{ key: 'w', variable: ours, grad: g }], 0.05);
      restored.apply([{ key: 'w', variable: copy, grad: g }], 0.05);
      g.dispose();
    }
    expect(Array.from(copy.dataSync())).toEqual(Array.from(ours.dataSync()));
    expect(restored.t).toBe(9);
    adam.dispose();
    restored.dispose();
    tfAdam.dispose();
  });
});
