export declare function isBuiltin(specifier: string): boolean;
export declare function packageName(specifier: string): string | undefined;
export declare function importsOf(code: string): string[];
export declare function runtimeImports(packageDir: string, entryFiles: string[]): Map<string, { dir: string; pkg: { name: string; dependencies?: Record<string, string>; peerDependencies?: Record<string, string> }; imports: Set<string> }>;
export declare function entryFiles(packageDir: string): string[];
export declare function undeclaredImports(packageDir: string, opts?: { app?: boolean }): { undeclared: string[]; peersNotProvided: string[]; reached: string[] };
export declare function runInPackage(packageDir: string, code: string, opts?: { ext?: '.mjs' | '.cjs'; timeoutMs?: number }): string;
export declare function duplicateDefinitions(dir: string): string[];
