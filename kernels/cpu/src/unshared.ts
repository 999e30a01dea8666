// Index arrays that live in a SharedArrayBuffer can be changed by another thread after they were
// checked (by the TypeScript validators, or by the binding's own scan before the product) and
// while native code reads them. Kernels therefore copy shared index arrays first and validate
// and pass the copy, so C++ only ever reads bytes that were checked. Arrays in ordinary
// ArrayBuffers are passed through without copying.

type IndexArray = Int32Array | Uint8Array | Uint32Array;

function isShared(buffer: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer;
}

/** The array itself when its buffer is not shared, else a private copy (a snapshot taken now). */
export function unshared<T extends IndexArray>(array: T): T {
  if (!ArrayBuffer.isView(array) || !isShared(array.buffer)) return array;
  return array.slice() as T;
}

/**
 * `args` with the named index arrays of `args[key]` replaced by unshared copies; `args` itself
 * when none of them is shared (or when the arguments are malformed: the validator reports that).
 */
export function withUnsharedIndices<A>(args: A, key: string, fields: readonly string[]): A {
  if (typeof args !== 'object' || args === null) return args;
  const layout = (args as Record<string, unknown>)[key];
  if (typeof layout !== 'object' || layout === null) return args;
  const copies: Record<string, unknown> = {};
  let changed = false;
  for (const field of fields) {
    const array = (layout as Record<string, unknown>)[field];
    if (array instanceof Int32Array || array instanceof Uint8Array || array instanceof Uint32Array) {
      const copy = unshared(array);
      if (copy !== array) {
        copies[field] = copy;
        changed = true;
      }
    }
  }
  return changed ? { ...args, [key]: { ...layout, ...copies } } : args;
}
