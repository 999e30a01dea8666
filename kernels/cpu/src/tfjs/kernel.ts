// The preamble every sparse-cpu kernel shares: read the backend's storage of the inputs, check
// their dtype, take the fast path or hand the call to tfjs-backend-cpu's kernel unchanged, and
// wrap the result as a tensor of the backend.
import type { DataType, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/** Plain numeric storage of MathBackendCPU (float32, int32, bool). */
export type Numeric = Float32Array | Int32Array | Uint8Array;

/** The slice of MathBackendCPU the kernels use. */
export interface CPUStorageBackend {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: DataType, values: Numeric): TensorInfo;
}

/** A kernel call as the fast paths see it. */
export interface FastKernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
  backend: CPUStorageBackend;
  attrs: Record<string, unknown>;
}

/** The Float32Array storage of a float32 tensor, or undefined (other dtypes, missing input). */
export function float32Values(backend: CPUStorageBackend, t: TensorInfo | undefined): Float32Array | undefined {
  if (t === undefined || t === null || t.dtype !== 'float32') return undefined;
  const values = backend.data.get(t.dataId).values;
  return values instanceof Float32Array ? values : undefined;
}

/** Plain numeric storage (float32, int32, bool), or undefined (strings, complex, missing input). */
export function numericValues(backend: CPUStorageBackend, t: TensorInfo | undefined): Numeric | undefined {
  if (t === undefined || t === null || !(t.dtype === 'float32' || t.dtype === 'int32' || t.dtype === 'bool')) return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array ? v : undefined;
}

/** What a fast path returns: its result, or undefined to let tfjs-backend-cpu's kernel take the call. */
export type FastResult = TensorInfo | TensorInfo[] | undefined;

/**
 * A kernel running `fast` and, when it returns undefined (a dtype or argument it does not cover),
 * `fallback` (tfjs-backend-cpu's kernel) on the same arguments. `name` is what profiles and tests see.
 */
export function fastKernel(name: string, fallback: KernelFunc, fast: (args: FastKernelArgs) => FastResult): KernelFunc {
  const kernel: KernelFunc = (args) => {
    const own: FastKernelArgs = { inputs: args.inputs as FastKernelArgs['inputs'], backend: args.backend as unknown as CPUStorageBackend, attrs: (args.attrs ?? {}) as Record<string, unknown> };
    return (fast(own) ?? fallback(args)) as TensorInfo | TensorInfo[];
  };
  Object.defineProperty(kernel, 'name', { value: name });
  return kernel;
}

/** `${op}Fast` with the first letter lowered (Multiply -> multiplyFast), the name of a replaced kernel. */
export function fastName(op: string): string {
  return `${op.charAt(0).toLowerCase()}${op.slice(1)}Fast`;
}
