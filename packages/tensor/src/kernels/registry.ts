import { ArgumentError, KernelError } from '../errors.js';
import {
  attentionBitmapKVReference,
  blockSparseAttentionBackwardReference,
  blockSparseAttentionReference,
  denseAttentionReference,
} from './reference/attention.js';
import { gemmReference } from './reference/gemm.js';
import { choleskyF64Reference, triangularInverseF64Reference } from './reference/linalg.js';
import { activationF32Reference } from './reference/activation.js';
import { columnMomentsF32Reference } from './reference/column-moments.js';
import { rowTopKScaledAbsReference } from './reference/row-topk.js';
import { gemvSparseInputReference } from './reference/gemv-sparse-input.js';
import { linearCSRGradInputReference, linearCSRReference, sddmmCSRReference } from './reference/linear-csr.js';
import { maskedAdamReference, maskedSGDReference } from './reference/optimizers.js';
import { spmmBlockReference } from './reference/spmm-block.js';
import { spmmCSRReference } from './reference/spmm-csr.js';
import { spmmNMReference } from './reference/spmm-nm.js';
import type {
  AttentionBitmapKVKernel,
  AttentionKernel,
  BlockSparseAttentionBackwardKernel,
  BlockSparseAttentionKernel,
  CholeskyF64Kernel,
  ActivationF32Kernel,
  ColumnMomentsF32Kernel,
  GemmKernel,
  GemvSparseInputKernel,
  LinearCSRGradInputKernel,
  LinearCSRKernel,
  MaskedAdamKernel,
  MaskedSGDKernel,
  RowTopKScaledAbsKernel,
  SddmmCSRKernel,
  SpmmBlockKernel,
  SpmmCSRKernel,
  SpmmNMKernel,
  TriangularInverseF64Kernel,
} from './types.js';

/**
 * The signature of every kernel, by name. Packages that add kernels extend it with module
 * augmentation, and then get typed `registerKernel` / `getKernel` calls for their names:
 *
 *   declare module '@sparse/tensor' {
 *     interface KernelSignatures { blockSparseAttention: (args: BlockSparseAttentionArgs) => void }
 *   }
 */
export interface KernelSignatures {
  gemm: GemmKernel;
  spmmCSR: SpmmCSRKernel;
  spmmNM: SpmmNMKernel;
  spmmBlock: SpmmBlockKernel;
  linearCSR: LinearCSRKernel;
  linearCSRGradInput: LinearCSRGradInputKernel;
  sddmmCSR: SddmmCSRKernel;
  gemvSparseInput: GemvSparseInputKernel;
  denseAttention: AttentionKernel;
  blockSparseAttention: BlockSparseAttentionKernel;
  blockSparseAttentionBackward: BlockSparseAttentionBackwardKernel;
  attentionBitmapKV: AttentionBitmapKVKernel;
  maskedAdam: MaskedAdamKernel;
  maskedSGD: MaskedSGDKernel;
  choleskyF64: CholeskyF64Kernel;
  triangularInverseF64: TriangularInverseF64Kernel;
  columnMomentsF32: ColumnMomentsF32Kernel;
  activationF32: ActivationF32Kernel;
  rowTopKScaledAbs: RowTopKScaledAbsKernel;
}

export type KernelName = keyof KernelSignatures & string;

/** One implementation of a kernel. Higher priority wins; the reference kernels use 0. */
export interface KernelConfig<K extends KernelName = KernelName> {
  name: K;
  backend: string;
  priority?: number;
  fn: KernelSignatures[K];
}

/** What `listKernels` reports about a registered implementation. */
export interface KernelInfo {
  name: string;
  backend: string;
  priority: number;
}

/** Backend name of the pure-TypeScript kernels, which are always registered. */
export const REFERENCE_BACKEND = 'reference';

interface Entry {
  name: string;
  backend: string;
  priority: number;
  fn: (...args: never[]) => unknown;
  /** Registration order: among equal priorities the latest registration wins. */
  seq: number;
}

interface KernelStore {
  version: 1;
  kernels: Map<string, Map<string, Entry>>;
  seq: number;
  referenceRegistered: boolean;
}

const STORE_KEY = Symbol.for('@sparse/tensor.kernels');

/** The registry lives on globalThis so that two copies of this package in one process share it. */
function store(): KernelStore {
  const g = globalThis as unknown as Record<symbol, KernelStore | undefined>;
  let s = g[STORE_KEY];
  if (s === undefined) {
    s = { version: 1, kernels: new Map(), seq: 0, referenceRegistered: false };
    g[STORE_KEY] = s;
  }
  return s;
}

/**
 * Registers (or replaces) the implementation of `name` for `backend`. Returns a function that
 * unregisters exactly this registration.
 */
export function registerKernel<K extends KernelName>(config: KernelConfig<K>): () => void {
  const { name, backend, fn } = config;
  const priority = config.priority ?? 0;
  if (typeof name !== 'string' || (name as string) === '') throw new ArgumentError('registerKernel: name must be a non-empty string');
  if (typeof backend !== 'string' || backend === '') throw new ArgumentError(`registerKernel(${name}): backend must be a non-empty string`);
  if (typeof fn !== 'function') throw new ArgumentError(`registerKernel(${name}, ${backend}): fn must be a function`);
  if (typeof priority !== 'number' || !Number.isFinite(priority)) {
    throw new ArgumentError(`registerKernel(${name}, ${backend}): priority must be a finite number, got ${String(priority)}`);
  }
  // References first, so that among equal priorities a later registration still wins over them.
  ensureReferenceKernels();
  const s = store();
  let byBackend = s.kernels.get(name);
  if (byBackend === undefined) {
    byBackend = new Map();
    s.kernels.set(name, byBackend);
  }
  const entry: Entry = { name, backend, priority, fn: fn as Entry['fn'], seq: ++s.seq };
  byBackend.set(backend, entry);
  return () => {
    // Only remove our own entry: a later registration for the same backend must survive.
    if (byBackend.get(backend) === entry) unregisterKernel(name, backend);
  };
}

/** Removes one backend's implementation of a kernel. Returns whether one was registered. */
export function unregisterKernel(name: string, backend: string): boolean {
  ensureReferenceKernels();
  const byBackend = store().kernels.get(name);
  if (byBackend === undefined || !byBackend.delete(backend)) return false;
  if (byBackend.size === 0) store().kernels.delete(name);
  return true;
}

function best(byBackend: Map<string, Entry>): Entry | undefined {
  let top: Entry | undefined;
  for (const e of byBackend.values()) {
    if (top === undefined || e.priority > top.priority || (e.priority === top.priority && e.seq > top.seq)) top = e;
  }
  return top;
}

function lookup(name: string, backend: string | undefined): Entry | undefined {
  ensureReferenceKernels();
  const byBackend = store().kernels.get(name);
  if (byBackend === undefined) return undefined;
  return backend === undefined ? best(byBackend) : byBackend.get(backend);
}

/**
 * The implementation of a kernel: the highest-priority one, or the named backend's.
 * Throws KernelError naming what is registered when there is none.
 */
export function getKernel<K extends KernelName>(name: K, backend?: string): KernelSignatures[K] {
  const entry = lookup(name, backend);
  if (entry === undefined) {
    const known = store().kernels.get(name);
    const detail = known
      ? `registered backends for ${name}: ${[...known.keys()].join(', ')}`
      : `registered kernels: ${[...store().kernels.keys()].sort().join(', ') || '(none)'}`;
    throw new KernelError(`getKernel: no kernel ${JSON.stringify(name)}${backend === undefined ? '' : ` for backend ${JSON.stringify(backend)}`}; ${detail}`);
  }
  return entry.fn as unknown as KernelSignatures[K];
}

/** Whether a kernel is registered (for any backend, or for the named one). */
export function hasKernel(name: string, backend?: string): boolean {
  return lookup(name, backend) !== undefined;
}

/** The backend `getKernel(name)` would use, or undefined when the kernel is unknown. */
export function kernelBackend(name: string): string | undefined {
  return lookup(name, undefined)?.backend;
}

/** Every registered implementation (of one kernel, or all), by name, then by the order getKernel prefers them. */
export function listKernels(name?: string): KernelInfo[] {
  ensureReferenceKernels();
  const out: Entry[] = [];
  for (const [kernel, byBackend] of store().kernels) {
    if (name === undefined || kernel === name) out.push(...byBackend.values());
  }
  out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : y.priority - x.priority || y.seq - x.seq));
  return out.map(({ name: n, backend, priority }) => ({ name: n, backend, priority }));
}

/** The pure-TypeScript implementations, registered under backend 'reference' at priority 0. */
export const referenceKernels: readonly KernelConfig[] = [
  { name: 'gemm', backend: REFERENCE_BACKEND, priority: 0, fn: gemmReference },
  { name: 'spmmCSR', backend: REFERENCE_BACKEND, priority: 0, fn: spmmCSRReference },
  { name: 'spmmNM', backend: REFERENCE_BACKEND, priority: 0, fn: spmmNMReference },
  { name: 'spmmBlock', backend: REFERENCE_BACKEND, priority: 0, fn: spmmBlockReference },
  { name: 'linearCSR', backend: REFERENCE_BACKEND, priority: 0, fn: linearCSRReference },
  { name: 'linearCSRGradInput', backend: REFERENCE_BACKEND, priority: 0, fn: linearCSRGradInputReference },
  { name: 'sddmmCSR', backend: REFERENCE_BACKEND, priority: 0, fn: sddmmCSRReference },
  { name: 'gemvSparseInput', backend: REFERENCE_BACKEND, priority: 0, fn: gemvSparseInputReference },
  { name: 'denseAttention', backend: REFERENCE_BACKEND, priority: 0, fn: denseAttentionReference },
  { name: 'blockSparseAttention', backend: REFERENCE_BACKEND, priority: 0, fn: blockSparseAttentionReference },
  { name: 'blockSparseAttentionBackward', backend: REFERENCE_BACKEND, priority: 0, fn: blockSparseAttentionBackwardReference },
  { name: 'attentionBitmapKV', backend: REFERENCE_BACKEND, priority: 0, fn: attentionBitmapKVReference },
  { name: 'maskedAdam', backend: REFERENCE_BACKEND, priority: 0, fn: maskedAdamReference },
  { name: 'maskedSGD', backend: REFERENCE_BACKEND, priority: 0, fn: maskedSGDReference },
  { name: 'choleskyF64', backend: REFERENCE_BACKEND, priority: 0, fn: choleskyF64Reference },
  { name: 'triangularInverseF64', backend: REFERENCE_BACKEND, priority: 0, fn: triangularInverseF64Reference },
  { name: 'columnMomentsF32', backend: REFERENCE_BACKEND, priority: 0, fn: columnMomentsF32Reference },
  { name: 'activationF32', backend: REFERENCE_BACKEND, priority: 0, fn: activationF32Reference },
  { name: 'rowTopKScaledAbs', backend: REFERENCE_BACKEND, priority: 0, fn: rowTopKScaledAbsReference },
] as KernelConfig[];

/** Registers (or re-registers) every reference kernel. */
export function registerReferenceKernels(): void {
  store().referenceRegistered = true;
  for (const config of referenceKernels) registerKernel(config);
}

/**
 * Registers the reference kernels the first time the registry is consulted (once per process, even
 * with several copies of this package). Doing it lazily rather than at import keeps the module free
 * of import-time side effects, so `"sideEffects": false` stays true and tree shaking cannot lose it.
 */
function ensureReferenceKernels(): void {
  if (!store().referenceRegistered) registerReferenceKernels();
}
