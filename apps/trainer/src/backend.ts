// Compute backend choice for the trainer: the one place that decides which tfjs backend runs.

import * as tf from '@tensorflow/tfjs-core';
import { registerCPUKernels } from '@sparse/kernels-cpu';
import { selectBackend, type BackendChoice } from '@sparse/kernels-cpu/select-backend';

export type { BackendChoice };

/**
 * Picks the fastest usable tfjs backend for training through @sparse/kernels-cpu's selectBackend
 * (tfjs-node-gpu, tfjs-node, its own sparse-cpu, then plain cpu; wasm is skipped for training).
 * `log` receives selectBackend's one-line explanation (default: dropped; callers print `reason`).
 */
export async function chooseBackend(log: (line: string) => void = () => {}): Promise<BackendChoice> {
  const choice = await selectBackend({ training: true, log });
  registerNativeKernels();
  if (choice.name === 'cpu') {
    // the plain CPU backend prints an "install tfjs-node" banner on its first tensor; the reason
    // above already says which backend runs, so that first tensor is made with warnings muted
    const prod = tf.env().getBool('PROD');
    tf.env().set('PROD', true);
    tf.dispose(tf.scalar(0));
    tf.env().set('PROD', prod);
  }
  return choice;
}

let nativeKernels: boolean | undefined;

/**
 * The native kernels of @sparse/kernels-cpu in @sparse/tensor's kernel registry (once per process),
 * so what the trainer computes outside tfjs (calibration Hessians, SparseGPT's solver, N:M products)
 * runs on the native gemm instead of the TypeScript reference. Without the addon the reference stays
 * and kernels-cpu logs why; SPARSE_NATIVE_KERNELS=0 keeps the reference on purpose (to compare).
 * Returns whether native kernels are registered.
 */
export function registerNativeKernels(): boolean {
  nativeKernels ??= process.env.SPARSE_NATIVE_KERNELS === '0' ? false : registerCPUKernels().native;
  return nativeKernels;
}
