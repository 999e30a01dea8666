export declare function extractJsBlocks(markdown: string): string[];
export declare function runReadmeExamples(packageDir: string, opts?: { timeoutMs?: number }): { code: string; stdout: string }[];
export declare const README_RESOLUTIONS: readonly ['node16', 'bundler'];
export declare function typecheckReadmeExamples(packageDir: string): Record<'node16' | 'bundler', string>;
/** The runner functions readmeTypecheckSuite registers its tests with (vitest's, passed in). */
export interface ReadmeSuiteRunner {
  describe: (name: string, body: () => void) => unknown;
  it: { each: (cases: readonly string[]) => (name: string, body: (resolution: 'node16' | 'bundler') => void) => unknown };
  expect: (value: unknown) => { toBe: (expected: unknown) => void };
  beforeAll: (body: () => void, timeoutMs?: number) => unknown;
}
export declare function readmeTypecheckSuite(packageDir: string, runner: ReadmeSuiteRunner, opts?: { prepare?: () => void; timeoutMs?: number }): void;
