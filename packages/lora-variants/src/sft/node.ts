// Reading and writing SFT delta files (Node only); writes are atomic.
import { openSafetensors, writeSafetensorsFile } from '@sparse/tensor/node';
import type { SafetensorsRawTensor } from '@sparse/tensor';
import type { SparseDelta } from './delta.js';
import { sparseDeltasFromSafetensors, sparseDeltasToSafetensors, type SparseDeltaFileOptions } from './file.js';

/** Writes the deltas as one safetensors file; returns its size in bytes. */
export async function saveSparseDeltas(path: string, deltas: Record<string, SparseDelta>, opts: SparseDeltaFileOptions = {}): Promise<number> {
  const { tensors, metadata } = sparseDeltasToSafetensors(deltas, opts);
  return writeSafetensorsFile(path, tensors, metadata);
}

/** Reads an SFT delta file (values as float32); reads only the header and the delta tensors. */
export async function loadSparseDeltas(path: string): Promise<Record<string, SparseDelta>> {
  const reader = await openSafetensors(path);
  try {
    const raw = new Map<string, SafetensorsRawTensor>();
    for (const n of reader.tensorNames) if (n.endsWith('.sft_indices') || n.endsWith('.sft_values')) raw.set(n, await reader.readRaw(n));
    return sparseDeltasFromSafetensors({ file: path, metadata: reader.metadata, has: (n) => raw.has(n), raw: (n) => raw.get(n)! });
  } finally {
    await reader.close();
  }
}
