// export stage: the model as safetensors, dense and compressed (pruned weights in their N:M or CSR
// layouts, so the file is smaller than dense), with the model spec in the metadata, and in the
// compressed-tensors layouts vLLM reads (folder exports/compressed-tensors/); adapters were
// saved in the PEFT layout by their adapt stages. loadExportedModel reads either file back.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isNM } from '@sparse/nm';
import { applyMask } from '@sparse/masks';
import { cast, layoutByteLength, tensor, toBitmask, toCSR, toNM, isSparseLayout, type SafetensorsInput, type Tensor } from '@sparse/tensor';
import { atomicWriteFile, writeSafetensorsFile } from '@sparse/tensor/node';
import { activationCheckpoint } from '../methods/activation/sparsify.js';
import { ATTENTION_FILE, attentionExport } from '../methods/attention/record.js';
import { CHECKPOINT_FORMAT, loadCheckpoint } from '../model/checkpoint.js';
import { compressedTensorsFormatAt, fitsSparse24, loadCompressedTensorsModel, writeCompressedTensors, type CompressedTensorsParam } from '../model/compressed-tensors.js';
import type { LanguageModel } from '../model/types.js';
import type { StageOf } from '../recipe/schema.js';
import type { StageArgs, StageOutcome } from './common.js';
import { writeExportContents } from './export-contents.js';

/** The activation sparsifier of the run, beside the exported model (method, config, each site's state). */
/** The sparse attention of the run (an attention stage's method, config and state): methods/attention/record.ts. */
export { ATTENTION_FILE, ATTENTION_FORMAT } from '../methods/attention/record.js';
export const ACTIVATION_FILE = 'activation.json';
export const ACTIVATION_FORMAT = 'sparse-activation/1';

export async function runExportStage(args: StageArgs<StageOf<'export'>>): Promise<StageOutcome> {
  const { ctx, stage } = args;
  if (ctx.adapter) ctx.report.notes.push(`export: adapter '${ctx.adapter.label}' was attached and not merged; the exported weights are the base without it`);
  const dir = join(ctx.dir, 'exports');
  mkdirSync(dir, { recursive: true });
  // the checkpoint convention of model/checkpoint.ts, so loadCheckpoint reads either file
  const metadata = { format: CHECKPOINT_FORMAT, spec: JSON.stringify(ctx.model.spec) };
  const dense = (v: Float32Array, shape: number[]): Tensor => {
    const t = tensor(v, shape);
    return stage.dtype === 'float32' ? t : cast(t, stage.dtype);
  };
  const denseBytes = Object.values(ctx.model.params).reduce((s, v) => s + v.size * 4, 0);
  const lines: string[] = [];
  const values = ctx.paramValues();
  if (stage.formats.includes('dense')) {
    const entries: Record<string, SafetensorsInput> = {};
    for (const [k, v] of values) entries[k] = dense(v, [...ctx.model.params[k]!.shape]);
    const path = join(dir, 'model.safetensors');
    const bytes = await writeSafetensorsFile(path, entries, metadata);
    ctx.report.files.push({ label: `dense model (${stage.dtype})`, path, bytes, denseBytes });
    lines.push(`dense ${bytes.toLocaleString('en-US')} bytes`);
  }
  if (stage.formats.includes('compressed')) {
    const entries: Record<string, SafetensorsInput> = {};
    let layouts = 0;
    for (const [k, v] of values) {
      const shape = [...ctx.model.params[k]!.shape];
      const mask = ctx.masks.get(k);
      if (mask === undefined) {
        entries[k] = dense(v, shape);
        continue;
      }
      const masked = dense(applyMask(mask, tensor(v, shape)).data as Float32Array, shape);
      const p = ctx.pattern;
      // the smallest of N:M (when every group holds at most N), bitmask and CSR, or dense when none
      // is smaller than it (ties keep the earlier: dense, then N:M). N:M is not always the smallest:
      // 4:8 stores 3 index bits per kept value, 1.5 bits per weight against the bitmask's 1
      const options: SafetensorsInput[] = [toBitmask(masked), toCSR(masked)];
      if (p && shape[1]! % p.m === 0 && isNM(mask, { n: p.n, m: p.m }).valid) options.unshift(toNM(masked, { n: p.n, m: p.m }));
      const size = (t: SafetensorsInput) => (isSparseLayout(t) ? layoutByteLength(t) : (t as Tensor).data.byteLength);
      entries[k] = options.reduce((best, t) => (size(t) < size(best) ? t : best), masked as SafetensorsInput);
      if (isSparseLayout(entries[k])) layouts++;
    }
    const path = join(dir, 'model.compressed.safetensors');
    const bytes = await writeSafetensorsFile(path, entries, metadata);
    ctx.report.files.push({ label: `compressed model (${stage.dtype}, ${layouts} sparse tensors)`, path, bytes, denseBytes });
    lines.push(`compressed ${bytes.toLocaleString('en-US')} bytes (${((bytes / denseBytes) * 100).toFixed(1)}% of dense fp32)`);
  }
  if (stage.formats.includes('compressed-tensors')) {
    // the compressed-tensors library's layouts (what vLLM reads): 2:4 when every pruned weight is
    // 2:4, else the bitmask format; 16-bit as the library writes them
    const dtype = stage.dtype === 'bfloat16' ? 'bfloat16' : 'float16';
    const params: CompressedTensorsParam[] = [];
    for (const [k, v] of values) {
      const shape = [...ctx.model.params[k]!.shape];
      const mask = ctx.masks.get(k);
      const target = mask !== undefined && shape.length === 2 && k.endsWith('.weight');
      params.push({ name: k, shape, values: mask === undefined ? v : (applyMask(mask, tensor(v, shape)).data as Float32Array), target });
    }
    const p = ctx.pattern;
    const format = p && p.n === 2 && p.m === 4 && fitsSparse24(params, dtype) ? 'sparse-24-bitmask' : 'sparse-bitmask';
    const structure = p && params.every((q) => !q.target || (q.shape[1]! % p.m === 0 && isNM(ctx.masks.get(q.name)!, { n: p.n, m: p.m }).valid)) ? `${p.n}:${p.m}` : 'unstructured';
    const out = await writeCompressedTensors(join(dir, 'compressed-tensors'), params, { format, dtype, sparsityStructure: structure, spec: JSON.stringify(ctx.model.spec) });
    const targets = out.sparsityConfig.targets.length;
    ctx.report.files.push({ label: `compressed-tensors ${format} (${dtype}, ${targets} sparse tensors)`, path: out.modelPath, bytes: out.modelBytes, denseBytes });
    ctx.report.files.push({ label: 'compressed-tensors config.json', path: out.configPath, bytes: out.configBytes });
    lines.push(`compressed-tensors ${format} ${out.modelBytes.toLocaleString('en-US')} bytes (${((out.modelBytes / denseBytes) * 100).toFixed(1)}% of dense fp32)`);
  }
  if (ctx.activation) {
    // the sparsifier later forward passes apply: `sparse-train generate` decodes with it
    const path = join(dir, ACTIVATION_FILE);
    const text = `${JSON.stringify({ format: ACTIVATION_FORMAT, ...activationCheckpoint(ctx.activation) }, null, 1)}\n`;
    await atomicWriteFile(path, text);
    ctx.report.files.push({ label: `activation sparsifier (${ctx.activation.method}, ${ctx.activation.sparsifiers.size} sites)`, path, bytes: Buffer.byteLength(text) });
    lines.push(`activation sparsifier ${ctx.activation.method}`);
  }
  if (ctx.attention) {
    // the sparse attention later forward passes apply: `sparse-train generate` decodes with it
    const path = join(dir, ATTENTION_FILE);
    const text = `${JSON.stringify(attentionExport(ctx.attention), null, 1)}\n`;
    await atomicWriteFile(path, text);
    ctx.report.files.push({ label: `sparse attention (${ctx.attention.method})`, path, bytes: Buffer.byteLength(text) });
    lines.push(`sparse attention ${ctx.attention.method}`);
  }
  if (stage.formats.includes('adapters')) {
    const saved = ctx.report.files.filter((f) => f.label.startsWith('adapter '));
    lines.push(saved.length ? `${saved.length} adapter folder(s) in PEFT layout` : 'no adapters to export');
  }
  // which file is which (merged model, adapters, the unmerged bases they apply to)
  writeExportContents(ctx, dir);
  ctx.log.say(`export: ${lines.join('; ')} in ${dir}`);
  return { summary: lines.join('; ') };
}

/**
 * Reads a model written by the export stage back into a model: dense or compressed (the file), or
 * compressed-tensors (its folder or its model.safetensors, config.json beside it).
 */
export async function loadExportedModel(path: string): Promise<LanguageModel> {
  if (compressedTensorsFormatAt(path) !== undefined) return loadCompressedTensorsModel(path);
  return loadCheckpoint(path);
}
