// Typed arrays in a stage state go through the checkpoint file as tensors of their own dtype: int32
// indices past 2^24 come back exact (float32 would round them), floats bit for bit, and the JSON
// around them (nested objects, arrays, numbers, null) unchanged.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_DIR, readCheckpoint, writeCheckpoint, type CheckpointContent } from './checkpoint.js';
import { emptyReport } from './context.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-checkpoint-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function content(stageState: Record<string, unknown>): CheckpointContent {
  return {
    spec: { architecture: 'gpt', vocab: 8, d: 4, layers: 1, heads: 1, ctx: 4 } as unknown as CheckpointContent['spec'],
    next: { stage: 2, step: 6 },
    stageState,
    metricsBytes: 0,
    report: emptyReport(),
    params: new Map([['w', { data: new Float32Array([1, 2, 3, 4]), shape: [2, 2] }]]),
    masks: new Map(),
    snapshots: new Map(),
  };
}

describe('checkpoint stage state', () => {
  it('stores typed arrays as tensors with their dtype and restores them exactly inside the JSON', async () => {
    const big = new Int32Array([0, 2 ** 24 + 1, 2 ** 31 - 1, -7]);
    const floats = new Float32Array([Math.fround(0.1), -0, 3.4e38, 1e-45]);
    const state = {
      batches: { s: [1, 2, 3, 4], spare: null },
      sft: { stepCount: 5, layers: { 'h.0.fc.weight': { shape: [3, 5], indices: big, values: floats, adam: { step: 5, m: new Float32Array([1.5]), v: new Float32Array(0) }, accumulated: null } } },
      masks: [new Uint8Array([1, 0, 1]), { deep: [new Int32Array([9])] }],
      note: 'x',
    };
    const dir = join(tmp, 'a');
    await writeCheckpoint(dir, content(state));
    const latest = JSON.parse(readFileSync(join(dir, CHECKPOINT_DIR, 'latest.json'), 'utf8')) as { stageState: { sft: { layers: Record<string, { indices: unknown }> } } };
    expect(latest.stageState.sft.layers['h.0.fc.weight']!.indices).toEqual({ $tensor: expect.stringMatching(/^state\//), dtype: 'int32' });
    const back = await readCheckpoint(dir);
    expect(back.stageState).toEqual(state);
    const layer = (back.stageState!.sft as typeof state.sft).layers['h.0.fc.weight']!;
    expect(layer.indices).toBeInstanceOf(Int32Array);
    expect([...layer.indices]).toEqual([...big]);
    expect(Object.is(layer.values[1], -0)).toBe(true);
    expect(layer.values).toBeInstanceOf(Float32Array);
    expect((back.stageState!.masks as unknown[])[0]).toBeInstanceOf(Uint8Array);
    expect(back.next).toEqual({ stage: 2, step: 6 });
  });

  it('refuses typed arrays it cannot store exactly, naming where they are', async () => {
    await expect(writeCheckpoint(join(tmp, 'b'), content({ mezo: { z: new Float64Array(2) } }))).rejects.toThrow(/stageState\.mezo\.z is a Float64Array/);
  });
});
