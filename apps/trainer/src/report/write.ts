// Writes report.html and PNG copies of its plots into a run directory, each file atomically.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile } from '@sparse/tensor/node';
import { renderReportHTML, reportPlots } from './html.js';
import { type PNGOptions, sceneToPNG } from './png.js';
import type { ReportData } from './types.js';

export interface WrittenReport {
  /** Path of report.html. */
  html: string;
  /** Paths of plots/<name>.png, one per plot the data has. */
  pngs: string[];
}

/**
 * Writes `dir`/report.html and `dir`/plots/*.png (creating the directories). The PNGs go first,
 * so a report.html on disk always has its plot copies beside it.
 */
export async function writeReport(dir: string, data: ReportData, options: PNGOptions = {}): Promise<WrittenReport> {
  const html = renderReportHTML(data); // validates before anything is written
  const plotsDir = join(dir, 'plots');
  await mkdir(plotsDir, { recursive: true });
  const pngs: string[] = [];
  for (const plot of reportPlots(data)) {
    const path = join(plotsDir, `${plot.name}.png`);
    await atomicWriteFile(path, sceneToPNG(plot.scene, options));
    pngs.push(path);
  }
  const htmlPath = join(dir, 'report.html');
  await atomicWriteFile(htmlPath, html);
  return { html: htmlPath, pngs };
}
