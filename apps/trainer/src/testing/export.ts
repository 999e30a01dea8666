// Test helper: an exported model's linear weights all follow an N:M pattern.
import { isNM } from '@sparse/nm';
import { expect } from 'vitest';
import { loadExportedModel } from '../stages/export.js';

export async function expectExportedNM(path: string, pattern: { n: number; m: number } = { n: 2, m: 4 }): Promise<void> {
  const model = await loadExportedModel(path);
  try {
    for (const l of model.linears()) {
      const w = model.params[l.name]!;
      expect(isNM({ data: w.dataSync() as Float32Array, shape: [...w.shape], stride: [w.shape[1]!, 1], offset: 0, dtype: 'float32' }, pattern).valid, l.name).toBe(true);
    }
  } finally {
    model.dispose();
  }
}
