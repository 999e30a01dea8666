import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fullReport } from './__fixtures__/report.js';
import { renderReportHTML } from './html.js';
import { writeReport } from './write.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('writeReport', () => {
  it('writes report.html and one PNG per plot, leaving no temporary files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sparse-report-'));
    dirs.push(dir);
    const out = await writeReport(join(dir, 'run'), fullReport(), { scale: 1 });
    expect(out.html).toBe(join(dir, 'run', 'report.html'));
    expect(out.pngs.map((p) => p.slice(join(dir, 'run', 'plots').length + 1))).toEqual(['perplexity.png', 'loss.png', 'sparsity.png', 'files.png']);
    expect(await readFile(out.html, 'utf8')).toBe(renderReportHTML(fullReport()));
    for (const p of out.pngs) {
      const bytes = await readFile(p);
      expect([...bytes.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    }
    expect((await readdir(join(dir, 'run'))).sort()).toEqual(['plots', 'report.html']);
    expect((await readdir(join(dir, 'run', 'plots'))).sort()).toEqual(['files.png', 'loss.png', 'perplexity.png', 'sparsity.png']);
    // rewriting replaces the files in place
    const again = await writeReport(join(dir, 'run'), { ...fullReport(), name: 'second' }, { scale: 1 });
    expect(await readFile(again.html, 'utf8')).toContain('<h1>second</h1>');
  });

  it('writes only report.html when there is nothing to plot, and nothing at all for bad data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sparse-report-'));
    dirs.push(dir);
    const out = await writeReport(dir, { name: 'bare' });
    expect(out.pngs).toEqual([]);
    expect(await readFile(out.html, 'utf8')).toContain('<h1>bare</h1>');
    await expect(writeReport(join(dir, 'bad'), { name: 'x', layers: [{ name: 'w', shape: [2, 2], sparsity: 2 }] })).rejects.toThrow(/sparsity must be <= 1/);
    await expect(readdir(join(dir, 'bad'))).rejects.toThrow(/ENOENT/);
  });
});
