import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, Random, roundFloat16, SafetensorsError, serializeSafetensors, tensor } from '@sparse/tensor';
import { writeSafetensorsFile } from '@sparse/tensor/node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSparseDeltas, saveSparseDeltas } from '../node.js';
import { sparseDelta, type SparseDelta } from './delta.js';
import { sparseDeltasFromSafetensors, sparseDeltasToSafetensors } from './file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sft-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function deltaAt(rng: Random, o: number, i: number, density: number): SparseDelta {
  const idx = rng.sample(Math.round(density * o * i), o * i);
  return sparseDelta([o, i], idx, Array.from(idx, () => rng.normal()));
}

describe('SFT delta files', () => {
  it('round-trips exactly with F32 values, and to float16 rounding with F16', async () => {
    const rng = new Random(1);
    const deltas = { 'model.layers.0.q_proj': deltaAt(rng, 16, 24, 0.1), 'model.layers.0.v_proj': deltaAt(rng, 8, 24, 0.3), empty: sparseDelta([3, 3], []) };
    const path = join(dir, 'delta.safetensors');
    await saveSparseDeltas(path, deltas, { metadata: { base_model: 'tiny' } });
    const back = await loadSparseDeltas(path);
    expect(Object.keys(back).sort()).toEqual(Object.keys(deltas).sort());
    for (const [n, d] of Object.entries(deltas)) {
      expect(back[n]!.shape).toEqual(d.shape);
      expect(back[n]!.indices).toEqual(d.indices);
      expect(back[n]!.values).toEqual(d.values);
    }
    const half = join(dir, 'half.safetensors');
    await saveSparseDeltas(half, deltas, { valueDtype: 'F16' });
    const h = await loadSparseDeltas(half);
    for (const [n, d] of Object.entries(deltas)) {
      expect(h[n]!.indices).toEqual(d.indices);
      expect([...h[n]!.values]).toEqual([...d.values].map(roundFloat16));
    }
    // Readable by any safetensors reader: I32 indices, F32 values, shapes in metadata.
    const parsed = parseSafetensors(serializeSafetensors(sparseDeltasToSafetensors(deltas).tensors, sparseDeltasToSafetensors(deltas).metadata));
    expect(parsed.metadata.format).toBe('sft');
    expect(JSON.parse(parsed.metadata.sft_shapes!)['model.layers.0.v_proj']).toEqual([8, 24]);
    expect(parsed.raw('model.layers.0.q_proj.sft_indices').dtype).toBe('I32');
  });

  it('is smaller than the dense delta file below ~50% density (F32) and larger above', async () => {
    const rng = new Random(2);
    const [o, i] = [64, 128];
    const densePath = join(dir, 'dense.safetensors');
    await writeSafetensorsFile(densePath, { w: tensor(new Float32Array(o * i), [o, i]) });
    const dense = (await stat(densePath)).size;
    const sizes: Record<string, number> = {};
    for (const density of [0.01, 0.1, 0.45, 0.55]) {
      const p = join(dir, `d${density}.safetensors`);
      sizes[density] = await saveSparseDeltas(p, { w: deltaAt(rng, o, i, density) });
      expect(sizes[density]).toBe((await stat(p)).size);
    }
    expect(sizes[0.01]! / dense).toBeLessThan(0.03);
    expect(sizes[0.1]!).toBeLessThan(dense / 4);
    expect(sizes[0.45]!).toBeLessThan(dense);
    expect(sizes[0.55]!).toBeGreaterThan(dense);
    // F16 values: 6 bytes per entry, so still smaller at 55%
    const p16 = join(dir, 'h.safetensors');
    expect(await saveSparseDeltas(p16, { w: deltaAt(rng, o, i, 0.55) }, { valueDtype: 'F16' })).toBeLessThan(dense);
  });

  it('refuses malformed files with SafetensorsError naming the problem', () => {
    const good = sparseDeltasToSafetensors({ w: sparseDelta([2, 3], [1, 4], [1, 2]) });
    const open = (tensors: Record<string, unknown>, metadata: Record<string, string>) => parseSafetensors(serializeSafetensors(tensors as never, metadata));
    expect(() => sparseDeltasFromSafetensors(open(good.tensors, {}))).toThrow(/no 'sft_shapes' metadata/);
    expect(() => sparseDeltasFromSafetensors(open(good.tensors, { sft_shapes: '{"w": [2]}' }))).toThrow(/\[out, in\]/);
    expect(() => sparseDeltasFromSafetensors(open(good.tensors, { sft_shapes: '{"x": [2, 3]}' }))).toThrow(/missing tensor 'x.sft_indices'/);
    expect(() => sparseDeltasFromSafetensors(open(good.tensors, { sft_shapes: '{"w": [1, 3]}' }))).toThrow(SafetensorsError);
    const badIdx = { ...good.tensors, 'w.sft_indices': { dtype: 'I32', shape: [2], data: Int32Array.of(4, 1) } };
    expect(() => sparseDeltasFromSafetensors(open(badIdx, good.metadata))).toThrow(/strictly increasing/);
    const f64 = { ...good.tensors, 'w.sft_values': { dtype: 'F64', shape: [2], data: Float64Array.of(1, 2) } };
    expect(() => sparseDeltasFromSafetensors(open(f64, good.metadata))).toThrow(/F32 or F16, got F64/);
    expect(() => sparseDeltasToSafetensors({}, { metadata: { sft_shapes: 'x' } })).toThrow(/reserved/);
  });
});
