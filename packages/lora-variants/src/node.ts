// Saving and loading adapters as PEFT folders on disk (Node only). Both files are written atomically.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWriteFile, readSafetensorsFile, writeSafetensorsFile } from '@sparse/tensor/node';
import { fromPEFTFiles, PEFT_CONFIG_FILE, PEFT_SIDECAR_FILE, PEFT_WEIGHTS_FILE, PEFTFormatError, toPEFTFiles, type PEFTAdapter, type PEFTSaveOptions } from './peft.js';
import type { AdapterState } from './variants/types.js';

/**
 * Writes `dir/adapter_model.safetensors`, `dir/sparse_adapter_config.json` when the variant has keys of
 * its own (SQFT; a stale one is removed otherwise), then `dir/adapter_config.json` (creating dir).
 */
export async function savePEFTAdapter(dir: string, modules: Record<string, AdapterState>, opts: PEFTSaveOptions = {}): Promise<void> {
  const files = toPEFTFiles(modules, opts);
  await mkdir(dir, { recursive: true });
  // Weights first: a folder whose config exists always has its complete weights beside it.
  await writeSafetensorsFile(join(dir, PEFT_WEIGHTS_FILE), files.tensors, files.metadata);
  if (files.sidecar !== null) await atomicWriteFile(join(dir, PEFT_SIDECAR_FILE), `${JSON.stringify(files.sidecar, null, 2)}\n`);
  else await rm(join(dir, PEFT_SIDECAR_FILE), { force: true });
  await atomicWriteFile(join(dir, PEFT_CONFIG_FILE), `${JSON.stringify(files.config, null, 2)}\n`);
}

/** Reads a PEFT adapter folder; malformed files throw PEFTFormatError naming the file and field. */
export async function loadPEFTAdapter(dir: string): Promise<PEFTAdapter> {
  const configPath = join(dir, PEFT_CONFIG_FILE);
  const weightsPath = join(dir, PEFT_WEIGHTS_FILE);
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    throw new PEFTFormatError(configPath, '(file)', `cannot read: ${(error as Error).message}`);
  }
  const sidecarPath = join(dir, PEFT_SIDECAR_FILE);
  let sidecar: string | undefined;
  try {
    sidecar = await readFile(sidecarPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new PEFTFormatError(sidecarPath, '(file)', `cannot read: ${(error as Error).message}`);
  }
  const weights = await readSafetensorsFile(weightsPath);
  return fromPEFTFiles(text, weights, { config: configPath, weights: weightsPath, sidecar: sidecarPath }, sidecar);
}

// SFT delta files (indices + values per weight); see src/sft/file.ts for the layout.
export { loadSparseDeltas, saveSparseDeltas } from './sft/node.js';
