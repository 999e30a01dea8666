// exports/contents.json: which file of the export folder is which, from the run's file list (export
// stage models, each adapt stage's PEFT folder and the unmerged base it applies to).

import { writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { RunContext } from '../run/context.js';

export const EXPORT_CONTENTS_FILE = 'contents.json';

export interface ExportContents {
  /** Every file or folder under exports/ the run wrote, relative to it, with what it is. */
  files: { path: string; what: string; bytes: number }[];
  /** How the models relate. */
  about: Record<string, string>;
}

/** The contents of exports/contents.json for the files the run has written so far. */
export function exportContents(files: RunContext['report']['files'], exportsDir: string): ExportContents {
  const inside = files
    .map((f) => ({ path: relative(exportsDir, f.path), what: f.label, bytes: f.bytes }))
    .filter((f) => f.path !== '' && !f.path.startsWith('..') && !isAbsolute(f.path))
    .map((f) => ({ ...f, path: f.path.split(sep).join('/') }));
  return {
    files: inside,
    about: {
      merged: 'model.safetensors (and the compressed files) hold the final weights: every adapter whose stage merges is merged into them',
      adapter: 'adapters/<stage>/ is an adapter in the Hugging Face PEFT layout, saved before its merge (export.json there says which file is which)',
      base: 'adapters/<stage>/base/ is the unmerged, pruned base that adapter was trained on: apply the adapter to it, not to the merged model',
      activation: 'activation.json, when present, is the activation sparsifier the run evaluated with (method, config, per-site state); sparse-train generate applies it',
      attention: 'attention.json, when present, is the sparse attention the run evaluated with (format sparse-attention/1: an @sparse/attention method, its config and state, e.g. seer\'s gates); sparse-train generate applies it',
    },
  };
}

/** Writes exports/contents.json; returns its path. */
export function writeExportContents(ctx: Pick<RunContext, 'report'>, exportsDir: string): string {
  const path = join(exportsDir, EXPORT_CONTENTS_FILE);
  writeFileSync(path, `${JSON.stringify(exportContents(ctx.report.files, exportsDir), null, 2)}\n`);
  return path;
}
