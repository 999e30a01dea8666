// Runs in its own process (vitest forks isolate test files) without tfjs-core's gradients registered.
import '@tensorflow/tfjs-backend-cpu';
import { BackendError } from '@sparse/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { gradientsFor } from './tfjs.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('gradientsFor without registered gradients', () => {
  it('explains how to register them instead of failing with a bare tfjs error', () => {
    expect(tf.getGradient('Sum')).toBeUndefined(); // this file's process has not registered them
    const w = tf.variable(tf.ones([2]), true, 'unregistered_w');
    expect(() => gradientsFor(() => tf.sum(tf.square(w)) as tf.Scalar, [w])).toThrow(BackendError);
    expect(() => gradientsFor(() => tf.sum(tf.square(w)) as tf.Scalar, [w])).toThrow(/import '@tensorflow\/tfjs'/);
  });
});
