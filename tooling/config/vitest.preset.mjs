// Shared vitest preset: colocated *.test.ts files, node environment, generous timeouts for numeric tests.
import { defineConfig } from 'vitest/config';

/** @param {{ testTimeout?: number }} [opts] */
export function sparseVitest(opts = {}) {
  return defineConfig({
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      environment: 'node',
      testTimeout: opts.testTimeout ?? 60_000,
      hookTimeout: 60_000,
      pool: 'forks',
      maxWorkers: 2,
    },
  });
}
