import { DTypeError } from './errors.js';
import { checkAllocation } from './limits.js';

/** Element types a Tensor can hold. float16 and bfloat16 are stored as raw bits in a Uint16Array. */
export type DType = 'float32' | 'float64' | 'int32' | 'int8' | 'uint8' | 'bool' | 'float16' | 'bfloat16';

export interface StorageMap {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
}

export type Storage<D extends DType = DType> = StorageMap[D];

export const DTYPES: readonly DType[] = ['float32', 'float64', 'int32', 'int8', 'uint8', 'bool', 'float16', 'bfloat16'];

const BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
  float16: 2,
  bfloat16: 2,
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

export function assertDType(value: unknown, where = 'dtype'): asserts value is DType {
  if (!isDType(value)) {
    throw new DTypeError(`${where}: unknown dtype ${JSON.stringify(value)}; expected one of ${DTYPES.join(', ')}`);
  }
}

export function bytesPerElement(dtype: DType): number {
  return BYTES[dtype];
}

/** A zeroed storage array of `length` elements; ShapeError when it exceeds MAX_TENSOR_ELEMENTS or MAX_TENSOR_BYTES. */
export function allocStorage<D extends DType>(dtype: D, length: number): Storage<D> {
  if (BYTES[dtype] !== undefined) checkAllocation('allocStorage', `${length} ${dtype} values`, length, BYTES[dtype]);
  switch (dtype) {
    case 'float32':
      return new Float32Array(length) as Storage<D>;
    case 'float64':
      return new Float64Array(length) as Storage<D>;
    case 'int32':
      return new Int32Array(length) as Storage<D>;
    case 'int8':
      return new Int8Array(length) as Storage<D>;
    case 'uint8':
    case 'bool':
      return new Uint8Array(length) as Storage<D>;
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(length) as Storage<D>;
    default:
      throw new DTypeError(`unknown dtype ${JSON.stringify(dtype)}`);
  }
}

/** Checks that a typed array is the storage type of a dtype. */
export function storageMatches(dtype: DType, data: unknown): boolean {
  switch (dtype) {
    case 'float32':
      return data instanceof Float32Array;
    case 'float64':
      return data instanceof Float64Array;
    case 'int32':
      return data instanceof Int32Array;
    case 'int8':
      return data instanceof Int8Array;
    case 'uint8':
    case 'bool':
      return data instanceof Uint8Array;
    case 'float16':
    case 'bfloat16':
      return data instanceof Uint16Array;
    default:
      return false;
  }
}

/** The dtype a typed array stores natively (Uint16Array is ambiguous and reported as undefined). */
export function dtypeOfStorage(data: unknown): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  return undefined;
}
