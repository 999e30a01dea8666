// report stage: the run as a self-contained HTML file with PNG copies of its plots.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isNM } from '@sparse/nm';
import { maskToBooleans } from '@sparse/masks';
import { MAX_ROW_BLOCKS, writeReport, type ReportData, type ReportLayer } from '../report/index.js';
import type { StageOf } from '../recipe/schema.js';
import type { RunContext } from '../run/context.js';
import type { StageArgs, StageOutcome } from './common.js';

/** Per-layer sparsity of every linear weight, counted from the weights themselves (zeros). */
export function layerSparsity(ctx: RunContext): ReportLayer[] {
  return ctx.linears().map((l) => {
    const w = ctx.model.params[l.name]!.dataSync() as Float32Array;
    const mask = ctx.masks.get(l.name);
    const keep = mask ? maskToBooleans(mask) : undefined;
    const isZero = (k: number) => (keep !== undefined && keep[k] === 0) || w[k] === 0;
    let zeros = 0;
    const blocks = Math.min(MAX_ROW_BLOCKS, l.out);
    const blockZeros = new Array<number>(blocks).fill(0);
    const blockSize = new Array<number>(blocks).fill(0);
    for (let r = 0; r < l.out; r++) {
      const b = Math.floor((r * blocks) / l.out);
      for (let c = 0; c < l.in; c++) {
        const z = isZero(r * l.in + c) ? 1 : 0;
        zeros += z;
        blockZeros[b]! += z;
      }
      blockSize[b]! += l.in;
    }
    const layer: ReportLayer = {
      name: l.name,
      shape: [l.out, l.in],
      sparsity: zeros / (l.out * l.in),
      rowBlockSparsity: blockZeros.map((z, b) => z / blockSize[b]!),
    };
    const p = ctx.pattern;
    if (p && mask && l.in % p.m === 0) {
      // count the groups holding more than N nonzeros
      let violations = 0;
      for (let r = 0; r < l.out; r++) {
        for (let g = 0; g < l.in; g += p.m) {
          let nz = 0;
          for (let c = g; c < g + p.m; c++) if (w[r * l.in + c] !== 0) nz++;
          if (nz > p.n) violations++;
        }
      }
      layer.nm = { n: p.n, m: p.m, valid: violations === 0 && isNM(mask, { n: p.n, m: p.m }).valid, violations };
    }
    return layer;
  });
}

/** Bytes of a file, or of all files under a folder (recursively); undefined when the path is gone. */
export function bytesOnDisk(path: string): number | undefined {
  let st;
  try {
    st = statSync(path);
  } catch {
    return undefined;
  }
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const entry of readdirSync(path)) total += bytesOnDisk(join(path, entry)) ?? 0;
  return total;
}

/** The run's files for the report; a folder (a saved adapter) is listed with the bytes of the files in it. */
export function reportFiles<F extends { path: string; bytes: number }>(files: readonly F[]): F[] {
  return files.map((f) => {
    const bytes = statSync(f.path, { throwIfNoEntry: false })?.isDirectory() ? bytesOnDisk(f.path) : undefined;
    return bytes === undefined ? f : { ...f, bytes };
  });
}

export function reportData(ctx: RunContext, title?: string): ReportData {
  return {
    name: title ?? ctx.recipe.name,
    created: new Date().toISOString(),
    backend: ctx.backend.name,
    model: { architecture: ctx.model.architecture, params: ctx.model.numParams(), details: Object.fromEntries(Object.entries(ctx.model.spec).filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))) as Record<string, string | number | boolean> },
    recipe: ctx.recipe,
    stages: ctx.report.stages.map((s) => ({ index: s.index, kind: s.kind, ...(s.method ? { method: s.method } : {}), ms: s.ms, ...(s.summary ? { summary: `${s.label}: ${s.summary}` } : {}) })),
    lossCurves: ctx.report.lossCurves,
    evaluations: ctx.report.evaluations.map((e) => ({ label: e.label, data: e.data, perplexity: e.perplexity, loss: e.loss, tokens: e.tokens })),
    layers: layerSparsity(ctx),
    adapters: ctx.report.adapters,
    files: reportFiles(ctx.report.files),
    maskTraces: (ctx.report.maskTraces ?? []).map((t) => ({
      label: t.label,
      points: t.points,
      updates: t.updates,
      regrown: t.regrown,
      pruned: t.pruned,
      ...(t.updates > 0 ? { meanSAD: t.sadSum / t.updates, ...(t.jaccardSum !== undefined ? { meanJaccard: t.jaccardSum / t.updates } : {}) } : {}),
      denseFlops: t.denseFlops,
      sparseFlops: t.sparseFlops,
    })),
    ...(ctx.report.activations?.length ? { activations: ctx.report.activations } : {}),
    ...(ctx.report.attention?.length ? { attention: ctx.report.attention } : {}),
    ...(ctx.report.updateSets?.length ? { updateSets: ctx.report.updateSets } : {}),
    notes: ctx.report.notes,
  };
}

export async function runReportStage(args: StageArgs<StageOf<'report'>>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  const written = await writeReport(ctx.dir, reportData(ctx, stage.title));
  ctx.reportPath = written.html;
  ctx.log.say(`report ${written.html} (${written.pngs.length} PNG plots)`);
  return { summary: written.html };
}
