#!/usr/bin/env node
// `pnpm bench [name...]`: runs the benchmarks named (all when none), found as
// packages/*/bench/<name>.bench.mjs, kernels/*/bench/..., apps/*/bench/... after a build.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './harness.mjs';

function discover() {
  const found = new Map();
  for (const group of ['packages', 'kernels', 'apps']) {
    const base = join(repoRoot, group);
    if (!existsSync(base)) continue;
    for (const pkg of readdirSync(base)) {
      const dir = join(base, pkg, 'bench');
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        const m = /^(.+)\.bench\.mjs$/.exec(f);
        if (m) found.set(m[1], join(dir, f));
      }
    }
  }
  return found;
}

const available = discover();
const wanted = process.argv.slice(2);
const names = wanted.length > 0 ? wanted : [...available.keys()];
const unknown = names.filter((n) => !available.has(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${[...available.keys()].join(', ') || '(none yet)'}`);
  process.exit(2);
}
// turbo needs the pinned pnpm on PATH: present under `pnpm bench`, fetched through npx when run as plain node
const underPnpm = /pnpm/.test(process.env.npm_execpath ?? '');
const pnpmSpec = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).packageManager;
const build = ['turbo', 'run', 'build', '--output-logs=errors-only'];
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };
if (underPnpm) execFileSync('npx', build, { cwd: repoRoot, stdio: 'inherit', env });
else execFileSync('npx', ['--yes', pnpmSpec, 'exec', ...build], { cwd: repoRoot, stdio: 'inherit', env });
for (const n of names) {
  console.log(`\n== bench ${n} ==`);
  execFileSync(process.execPath, [available.get(n)], { cwd: repoRoot, stdio: 'inherit' });
}
