// The addon's sparse entry points check every stored index themselves (column range for CSR and
// block-sparse layouts, in-group positions for N:M), in C++ at a fraction of the cost of the
// TypeScript scan: at 4096 x 4096 and 10% density the scan took about 2 ms per call, a fifth of the
// product itself. So the wrappers validate everything else in TypeScript, leave that one scan to the
// addon, and when the addon refuses the indices run the full validation, which then throws the same
// typed error (naming the offending position) that the reference kernels throw.
import type { LayoutCheckOptions } from '@sparse/tensor';

/**
 * Validates `args` without the per-index scan, then runs `call(args)` (which may read them only now,
 * after validation: malformed arguments get the validator's typed error, not a TypeError). If `call`
 * throws a RangeError (the addon's refusal), validates again with the scan, which throws the typed
 * error; any error that validation does not explain is rethrown as it came.
 */
export function callWithNativeIndexCheck<A>(args: A, validate: (args: A, options: LayoutCheckOptions) => unknown, call: (args: A) => void): void {
  validate(args, { indexRange: false });
  try {
    call(args);
  } catch (error) {
    if (error instanceof RangeError) validate(args, {});
    throw error;
  }
}
