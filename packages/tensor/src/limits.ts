// Limits on what a claimed size (a shape in a file header, a layout's dense shape, a tensor
// constructor's argument) may allocate. A small file can claim an enormous shape; every dense
// allocation is checked against these before memory is asked for, so the claim fails with a
// typed error naming it instead of exhausting memory or throwing a bare RangeError.
import { ShapeError } from './errors.js';

/** Most elements one dense tensor may hold: 2^31 - 1 (what Int32 indices and offsets can address). */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

/** Most bytes one dense allocation may take: 2 GiB. */
export const MAX_TENSOR_BYTES = 2 ** 31;

/**
 * Throws ShapeError unless `elements` elements of `bytesPerElement` bytes each stay within
 * MAX_TENSOR_ELEMENTS and MAX_TENSOR_BYTES. `what` names the claim (for example a shape) in the message.
 */
export function checkAllocation(where: string, what: string, elements: number, bytesPerElement: number): void {
  const bytes = elements * bytesPerElement;
  if (elements > MAX_TENSOR_ELEMENTS) {
    throw new ShapeError(`${where}: ${what} claims ${elements} elements, above the limit of ${MAX_TENSOR_ELEMENTS} (2^31 - 1) elements per tensor`);
  }
  if (bytes > MAX_TENSOR_BYTES) {
    throw new ShapeError(
      `${where}: ${what} claims ${elements} elements = ${bytes} bytes (${(bytes / 2 ** 30).toFixed(2)} GiB), above the budget of MAX_TENSOR_BYTES = ${MAX_TENSOR_BYTES} bytes (2 GiB) per tensor`,
    );
  }
}
