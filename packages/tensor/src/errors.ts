// Typed errors shared by every package. A Symbol.for marker (not instanceof) identifies them,
// so the check works even when two copies of @sparse/tensor end up in one bundle.

const MARKER = Symbol.for('@sparse/tensor.error');

export type SparseErrorCode =
  | 'SHAPE'
  | 'DTYPE'
  | 'LAYOUT'
  | 'SAFETENSORS'
  | 'KERNEL'
  | 'ARGUMENT'
  | 'BACKEND';

export class SparseError extends Error {
  readonly code: SparseErrorCode;
  private readonly [MARKER] = true;

  constructor(code: SparseErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'SparseError';
  }

  static isInstance(value: unknown): value is SparseError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
  }
}

/** A shape does not fit: wrong rank, mismatched dimensions, sizes that disagree with data. */
export class ShapeError extends SparseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SHAPE', message, options);
    this.name = 'ShapeError';
  }
}

/** A dtype is unknown, unsupported by an operation, or does not match the storage array. */
export class DTypeError extends SparseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DTYPE', message, options);
    this.name = 'DTypeError';
  }
}

/** A sparse layout is internally inconsistent (indices out of range, bad pointers, N >= M...). */
export class LayoutError extends SparseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LAYOUT', message, options);
    this.name = 'LayoutError';
  }
}

/** A kernel lookup or call failed (unknown name, bad arguments). */
export class KernelError extends SparseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KERNEL', message, options);
    this.name = 'KernelError';
  }
}

/** An argument is outside its allowed range or of the wrong kind. */
export class ArgumentError extends SparseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ARGUMENT', message, options);
    this.name = 'ArgumentError';
  }
}

/** A safetensors file or buffer is malformed. `file` names the source ("<buffer>" for in-memory). */
export class SafetensorsError extends SparseError {
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('SAFETENSORS', `${file}: ${reason}`, options);
    this.name = 'SafetensorsError';
    this.file = file;
    this.reason = reason;
  }
}

/** No usable compute backend, or a requested backend is unavailable. */
export class BackendError extends SparseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND', message, options);
    this.name = 'BackendError';
  }
}
