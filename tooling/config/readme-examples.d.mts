export declare function extractJsBlocks(markdown: string): string[];
export declare function runReadmeExamples(packageDir: string, opts?: { timeoutMs?: number }): { code: string; stdout: string }[];
export declare const README_RESOLUTIONS: readonly ['node16', 'bundler'];
export declare function typecheckReadmeExamples(packageDir: string): Record<'node16' | 'bundler', string>;
