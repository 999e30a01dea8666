// Runs a tfjs computation on tfjs-backend-cpu and on sparse-cpu and compares the outputs element for
// element (Object.is: NaN equals NaN, +0 and -0 differ); shared by the sparse-cpu tests.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { SPARSE_CPU_BACKEND } from '../tfjs.js';

export const BACKENDS = ['cpu', SPARSE_CPU_BACKEND] as const;

export interface Output {
  shape: number[];
  dtype: string;
  /** As plain numbers, so int32 values keep every bit. */
  values: number[];
}

/** Each backend's outputs of fn on fresh tensors: shape, dtype and values. */
export async function onBoth(fn: () => tf.Tensor | tf.Tensor[]): Promise<{ cpu: Output[]; sparse: Output[] }> {
  const out: Output[][] = [];
  for (const backend of BACKENDS) {
    await tf.setBackend(backend);
    const results = tf.tidy(() => {
      const r = fn();
      return Array.isArray(r) ? r : [r];
    });
    out.push(results.map((t) => ({ shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync() as ArrayLike<number>) })));
    tf.dispose(results);
  }
  return { cpu: out[0]!, sparse: out[1]! };
}

/** Index of the first element where the two arrays differ (Object.is), or -1. */
export function firstDifference(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Math.min(got.length, want.length);
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) return i;
  return -1;
}

/** fn gives the same outputs on both backends: shapes, dtypes and every element. */
export async function expectIdentical(label: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const { cpu, sparse } = await onBoth(fn);
  expect(sparse.length, label).toBe(cpu.length);
  cpu.forEach((want, j) => {
    const got = sparse[j]!;
    expect(got.shape, label).toEqual(want.shape);
    expect(got.dtype, label).toBe(want.dtype);
    const at = firstDifference(got.values, want.values);
    if (at >= 0) expect.fail(`${label}: output ${j} element ${at}: sparse-cpu ${got.values[at]} vs cpu ${want.values[at]}`);
  });
}

/**
 * Test-file hooks: make tfjs-backend-cpu's first tensor quietly (it prints an "install tfjs-node"
 * banner on it) and restore the backend that was active before the file.
 */
export function useQuietCPUBackend(): void {
  let previous = '';
  beforeAll(async () => {
    previous = tf.getBackend();
    const prod = tf.env().getBool('PROD');
    tf.env().set('PROD', true);
    await tf.setBackend('cpu');
    tf.dispose(tf.scalar(0));
    tf.env().set('PROD', prod);
  });
  afterAll(async () => {
    if (previous) await tf.setBackend(previous);
  });
}
