// The 'sparse-cpu' tfjs backend: tfjs-backend-cpu's MathBackendCPU with every kernel it registers
// for 'cpu' registered again for 'sparse-cpu', except the matrix products, which go to the native
// gemm. Gradients of the products are products themselves (tfjs-core's BatchMatMul and fused
// matMul gradients call matMul), so training runs them natively too.
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { SPARSE_CPU_BACKEND } from '../backend-name.js';
import { nativeStatus, type NativeInfo } from '../native.js';
import { FAST_BINARY_OPS, makeBinary, makeUnsortedSegmentSum } from './elementwise.js';
import { makeMax, makeSlice, makeSoftmax, makeSplitV, makeSum, makeTranspose } from './layout.js';
import { makeBatchMatMul, makeFusedMatMul } from './matmul.js';
import { outputPool } from './pool.js';
import { FAST_UNARY_OPS, NATIVE_UNARY_OPS, makeUnary } from './unary.js';

/** Name of the backend in tfjs's registry: the kernel registry's name for the native kernels too. */
export { SPARSE_CPU_BACKEND };

/** Registration priority: above tfjs-backend-cpu (1), so importing the module makes it tfjs's default. */
export const SPARSE_CPU_PRIORITY = 2;

/**
 * Kernels the backend serves with the native addon: the matrix products; on float32 the binary
 * arithmetic, the exact unary maps and the Sum/Max reductions; and the strided copies of Transpose,
 * Slice and SplitV on float32 and int32 (bool there, and tiny tensors everywhere, take the
 * JavaScript loop, which gives the same values; an addon built before the elementwise kernels
 * leaves those to JavaScript, and registration lists them as fast kernels then).
 */
export const NATIVE_TFJS_KERNELS: readonly string[] = ['BatchMatMul', '_FusedMatMul', ...FAST_BINARY_OPS, ...NATIVE_UNARY_OPS, 'Sum', 'Max', 'Transpose', 'Slice', 'SplitV'];

/** Native kernels of NATIVE_TFJS_KERNELS that need the addon's elementwise exports. */
const ELEMENTWISE_KERNELS = new Set<string>([...FAST_BINARY_OPS, ...NATIVE_UNARY_OPS, 'Sum', 'Max', 'Transpose', 'Slice', 'SplitV']);

/**
 * Float32 kernels replaced by JavaScript that skips tfjs-backend-cpu's generic index paths (same
 * results); every kernel in neither list is tfjs-backend-cpu's, unchanged.
 */
export const FAST_TFJS_KERNELS: readonly string[] = [
  ...FAST_UNARY_OPS.filter((op) => !NATIVE_UNARY_OPS.includes(op)),
  'UnsortedSegmentSum',
  'Softmax',
];

/**
 * tfjs-backend-cpu's backend class with a name, the addon it runs on, and recycled output storage:
 * the storage hooks below tell the output pool (pool.ts) when an array becomes a tensor's storage,
 * when it may be seen from outside (read out, moved in), and when its tensor releases it.
 */
export class SparseCPUBackend extends MathBackendCPU {
  /** What the native addon reports (threads, SIMD, BLAS). */
  readonly native: NativeInfo;

  constructor(native: NativeInfo) {
    super();
    this.native = native;
    // MathBackendCPU prints a banner on its first tensor under Node ("install tfjs-node to speed
    // things up"); this backend is the fast path it asks for, so the banner would only mislead.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    outputPool.attach(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: tf.DataId, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    outputPool.escape(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: tf.DataId): tf.backend_util.BackendValues {
    // dataSync, arraySync and bufferSync hand out the storage itself
    outputPool.escape(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const released = super.disposeData(dataId, force);
    if (values !== undefined && !this.data.has(dataId)) outputPool.release(values);
    return released;
  }

  override dispose(): void {
    outputPool.clear();
    super.dispose();
  }
}

export interface SparseCPURegistration {
  /** Whether 'sparse-cpu' is registered with tfjs now (by this call or an earlier one). */
  registered: boolean;
  /** Kernel names served by native code. */
  nativeKernels: string[];
  /** Kernel names served by this package's JavaScript (float32 fast paths); the rest are tfjs-backend-cpu's. */
  fastKernels: string[];
  /** Why the backend is not registered, when it is not. */
  reason?: string;
}

export interface RegisterSparseCPUOptions {
  /** tfjs backend priority (default SPARSE_CPU_PRIORITY). */
  priority?: number;
  /** Receives the one line logged when the native addon is missing (default console.warn, once per process). */
  log?: (line: string) => void;
}

const STATE_KEY = Symbol.for('@sparse/kernels-cpu.tfjs');

interface TfjsState {
  result?: SparseCPURegistration;
  warned: boolean;
}

function state(): TfjsState {
  const g = globalThis as unknown as Record<symbol, TfjsState | undefined>;
  return (g[STATE_KEY] ??= { warned: false });
}

function isBackendRegistered(name: string): boolean {
  try {
    return tf.findBackendFactory(name) != null;
  } catch {
    return false;
  }
}

/** The line logged when the backend cannot be registered. */
export function sparseCPUUnavailableMessage(reason: string): string {
  return `@sparse/kernels-cpu/tfjs: tfjs backend '${SPARSE_CPU_BACKEND}' not registered: native addon unavailable (${reason})`;
}

/**
 * Registers the 'sparse-cpu' tfjs backend (importing '@sparse/kernels-cpu/tfjs' calls this). Every
 * kernel tfjs-backend-cpu has registered for 'cpu' is registered for 'sparse-cpu' too; BatchMatMul
 * and _FusedMatMul (forward and, through matMul, their gradients) run on the native gemm. Without
 * the native addon nothing is registered and one line says why, so `selectBackend` moves on to
 * the next backend. Idempotent.
 */
export function registerSparseCPUBackend(options: RegisterSparseCPUOptions = {}): SparseCPURegistration {
  const s = state();
  if (s.result?.registered && isBackendRegistered(SPARSE_CPU_BACKEND)) return s.result;
  const status = nativeStatus();
  const gemmBatched = status.available ? status.addon.gemmBatched : undefined;
  if (!status.available || typeof gemmBatched !== 'function') {
    const reason = status.available ? 'the addon exports no gemmBatched (stale build?)' : status.reason;
    if (!s.warned) {
      s.warned = true;
      (options.log ?? console.warn)(sparseCPUUnavailableMessage(reason));
    }
    return (s.result = { registered: false, nativeKernels: [], fastKernels: [], reason });
  }
  const info = status.info;
  const { elementwiseBinary, elementwiseUnary, reduceLastAxis, gather32 } = status.addon;
  const elementwise = [elementwiseBinary, elementwiseUnary, reduceLastAxis, gather32].every((f) => typeof f === 'function');

  if (!isBackendRegistered(SPARSE_CPU_BACKEND)) {
    tf.registerBackend(SPARSE_CPU_BACKEND, () => new SparseCPUBackend(info), options.priority ?? SPARSE_CPU_PRIORITY);
  }
  const replacements: Record<string, (fallback: tf.KernelFunc) => tf.KernelFunc> = {
    BatchMatMul: (fallback) => makeBatchMatMul(gemmBatched, fallback),
    _FusedMatMul: (fallback) => makeFusedMatMul(gemmBatched, fallback),
    UnsortedSegmentSum: makeUnsortedSegmentSum,
    Transpose: (fallback) => makeTranspose(fallback, gather32),
    Slice: (fallback) => makeSlice(fallback, gather32),
    SplitV: (fallback) => makeSplitV(fallback, gather32),
    Sum: (fallback) => makeSum(fallback, reduceLastAxis, gather32),
    Max: (fallback) => makeMax(fallback, reduceLastAxis, gather32),
    Softmax: makeSoftmax,
  };
  for (const op of FAST_BINARY_OPS) replacements[op] = (fallback) => makeBinary(op, fallback, elementwiseBinary);
  for (const op of FAST_UNARY_OPS) replacements[op] = (fallback) => makeUnary(op, fallback, elementwiseUnary);
  const nativeKernels: string[] = [];
  const fastKernels: string[] = [];
  for (const config of tf.getKernelsForBackend('cpu')) {
    const name = config.kernelName;
    const replace = replacements[name];
    const native = NATIVE_TFJS_KERNELS.includes(name) && (elementwise || !ELEMENTWISE_KERNELS.has(name));
    if (replace !== undefined) (native ? nativeKernels : fastKernels).push(name);
    if (tf.getKernel(name, SPARSE_CPU_BACKEND) != null) continue;
    tf.registerKernel({ ...config, backendName: SPARSE_CPU_BACKEND, kernelFunc: replace ? replace(config.kernelFunc) : config.kernelFunc });
  }
  return (s.result = { registered: true, nativeKernels, fastKernels });
}
