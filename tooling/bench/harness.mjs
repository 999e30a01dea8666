// Benchmark helpers: every figure is measured side by side in one run and summarized by its median;
// results go to bench-results/<name>.json at the repository root. Never used for timed assertions.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** @typedef {{ min: number, median: number, max: number, reps: number }} Timing */

/**
 * Times fn() `reps` times after `warmup` calls; returns seconds (min, median, max).
 * @param {() => unknown} fn
 * @param {{ reps?: number, warmup?: number }} [opts]
 * @returns {Promise<Timing>}
 */
export async function measure(fn, { reps = 5, warmup = 1 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  /** @type {number[]} */
  const times = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return { min: times[0], median: times[Math.floor(times.length / 2)], max: times[times.length - 1], reps };
}

/**
 * Interleaves several candidates rep by rep so machine noise hits them alike. Each rep starts one
 * candidate further along (rep r runs candidate r, r + 1, ... in turn), so none always runs right
 * after the same other one (another library's threads still spinning after its call, a warm or cold
 * cache). Each Timing also keeps its seconds in rep order (`times`), for pairedRatio.
 * @param {Record<string, () => unknown>} candidates
 * @param {{ reps?: number, warmup?: number }} [opts]
 * @returns {Promise<Record<string, Timing & { times: number[] }>>}
 */
export async function compare(candidates, { reps = 5, warmup = 1 } = {}) {
  const names = Object.keys(candidates);
  for (const n of names) for (let i = 0; i < warmup; i++) await candidates[n]();
  /** @type {Record<string, number[]>} */
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < names.length; i++) {
      const n = names[(r + i) % names.length];
      const t0 = process.hrtime.bigint();
      await candidates[n]();
      times[n].push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return Object.fromEntries(
    names.map((n) => {
      const t = times[n].slice().sort((a, b) => a - b);
      return [n, { min: t[0], median: t[Math.floor(t.length / 2)], max: t[t.length - 1], reps, times: times[n] }];
    }),
  );
}

/**
 * The median over reps of (fastest of `baselines` in that rep) / (`candidate` in that rep): a speedup
 * whose two sides ran seconds apart, so a slow stretch of a shared machine slows both. Steadier than
 * the ratio of medians when the machine's speed drifts during a run.
 * @param {Record<string, { times: number[] }>} result what compare returned
 * @param {string[]} baselines
 * @param {string} candidate
 */
export function pairedRatio(result, baselines, candidate) {
  const ratios = result[candidate].times.map((t, r) => Math.min(...baselines.map((b) => result[b].times[r])) / t).sort((a, b) => a - b);
  return ratios[Math.floor(ratios.length / 2)];
}

/**
 * Prints rows as an aligned table.
 * @param {Record<string, unknown>[]} rows
 */
export function printTable(rows) {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]);
  const fmt = (/** @type {unknown} */ v) => (typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)) : String(v));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => fmt(r[c]).length)));
  console.log(cols.map((c, i) => c.padEnd(width[i])).join('  '));
  for (const r of rows) console.log(cols.map((c, i) => fmt(r[c]).padEnd(width[i])).join('  '));
}

/**
 * Writes bench-results/<name>.json atomically and returns its path.
 * @param {string} name
 * @param {Record<string, unknown>} data
 */
export function writeResults(name, data) {
  const dir = join(repoRoot, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ name, date: new Date().toISOString(), node: process.version, ...data }, null, 2));
  renameSync(tmp, file);
  return file;
}
