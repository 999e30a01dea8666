// Test helper: tests that drive the built package (the bin, the README example) build it first
// when a fresh checkout has no dist yet.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function ensureDist(): void {
  if (existsSync(join(packageRoot, 'dist', 'cli.js')) && existsSync(join(packageRoot, 'dist', 'index.js'))) return;
  const pkgJSON = createRequire(import.meta.url).resolve('tsup/package.json');
  const bin = (JSON.parse(readFileSync(pkgJSON, 'utf8')) as { bin: Record<string, string> }).bin.tsup;
  execFileSync(process.execPath, [join(dirname(pkgJSON), bin)], { cwd: packageRoot, stdio: 'ignore' });
}
