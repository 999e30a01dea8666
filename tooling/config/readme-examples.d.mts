export declare function extractJsBlocks(markdown: string): string[];
export declare function runReadmeExamples(packageDir: string, opts?: { timeoutMs?: number }): { code: string; stdout: string }[];
