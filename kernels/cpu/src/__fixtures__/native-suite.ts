// How the native test suites run when the addon is missing. By default they are skipped, with the
// loader's reason in their title, so a machine without a C++ toolchain still passes. With
// SPARSE_REQUIRE_NATIVE=1 (set by .ci/run when a compiler is present) a missing addon is a failure
// instead: a suite that silently skips would otherwise hide a broken build.
import { describe, it } from 'vitest';
import { nativeStatus } from '../native.js';

/** True when SPARSE_REQUIRE_NATIVE=1: the native suites fail instead of skipping. */
export const REQUIRE_NATIVE = process.env.SPARSE_REQUIRE_NATIVE === '1';

/** The addon status the suites share (the loader's cached result). */
export const status = nativeStatus();

/**
 * `describe` for a suite that needs the addon (or part of it: pass `missing`, a reason, when a
 * kernel the suite needs is absent). Runs when it is usable; otherwise skips with the reason in the
 * title, or, under SPARSE_REQUIRE_NATIVE=1, registers one test that fails with that reason.
 */
export function nativeSuite(missing: string | undefined = status.available ? undefined : status.reason) {
  return (name: string, body: () => void): void => {
    if (missing === undefined) {
      describe(name, body);
    } else if (REQUIRE_NATIVE) {
      describe(name, () => {
        it('needs the native addon (SPARSE_REQUIRE_NATIVE=1)', () => {
          throw new Error(`SPARSE_REQUIRE_NATIVE=1 but the native addon is not usable: ${missing}`);
        });
      });
    } else {
      describe.skip(`${name} (skipped: native addon not usable: ${missing}; SPARSE_REQUIRE_NATIVE=1 makes this a failure)`, body);
    }
  };
}
