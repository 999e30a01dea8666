import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { causalMask } from './__fixtures__/causal-mask.js';
import { Forward, moeLayer, rmsNorm, topKRouting } from './layers.js';
import type { LinearInfo } from './types.js';

beforeAll(async () => {
  await chooseBackend();
});

describe('layers', () => {
  it('topKRouting keeps the k highest logits, the lower index on ties, and masks the rest', () => {
    const { chosen, mask } = topKRouting(Float32Array.from([0.1, 2, 2, -1, 5, 4, 4, 3]), 2, 4, 2);
    expect(Array.from(chosen)).toEqual([1, 2, 0, 1]);
    expect(Array.from(mask)).toEqual([-1e9, 0, 0, -1e9, 0, 0, -1e9, -1e9]);
  });

  it('rmsNorm divides by the root mean square, then applies the gain', () => {
    const x = [[3, -4, 0, 1], [0.5, 0.5, 0.5, -0.5]];
    const g = [1, 2, 0.5, -1];
    const got = tf.tidy(() => rmsNorm(tf.tensor2d(x), tf.tensor1d(g), 1e-6).arraySync());
    x.forEach((row, r) => {
      const rms = Math.sqrt(row.reduce((s, a) => s + a * a, 0) / row.length + 1e-6);
      row.forEach((a, c) => expect(got[r][c]).toBeCloseTo((a / rms) * g[c], 5));
    });
  });

  it('causalMask repeats the [T,T] mask down the rows', () => {
    expect(causalMask(2, 2).arraySync()).toEqual([[0, -1e9], [0, 0], [0, -1e9], [0, 0]]);
  });

  it('an expert no token is routed to still runs, and its linearInput hook sees an empty [0, in]', () => {
    const infos: LinearInfo[] = [
      { name: 'r.weight', out: 2, in: 3, block: 0, group: 0, role: 'moe.router' },
      { name: 'e0.weight', out: 3, in: 3, block: 0, group: 0, role: 'moe.expert.up', expert: 0 },
      { name: 'e1.weight', out: 3, in: 3, block: 0, group: 0, role: 'moe.expert.up', expert: 1 },
    ];
    // the router always prefers expert 0 for positive inputs
    const params = { 'r.weight': tf.tensor2d([[1, 1, 1], [-1, -1, -1]]), 'e0.weight': tf.eye(3), 'e1.weight': tf.mul(tf.eye(3), 5) };
    const seen: Record<string, number[]> = {};
    const x = tf.tensor2d([[1, 2, 3], [0.5, 0.1, 0.2]]);
    const f = new Forward(params, infos, { linearInput: (info, xs) => (seen[info.name] = xs.shape) });
    const y = tf.tidy(() => moeLayer(f, 0, 'r.weight', { experts: 2, topK: 1 }, x, (e, xe, rows) => f.linear(`e${e}.weight`, xe, rows)).arraySync());
    expect(seen).toEqual({ 'r.weight': [2, 3], 'e0.weight': [2, 3], 'e1.weight': [0, 3] });
    expect(y).toEqual(x.arraySync()); // gate 1 on the identity expert
  });
});
