// S2FT in a run: the adapt stage hands the model's coupled groups to the adapter, so the exported
// adapter trains the same heads in Q, K, V (rows) and O (columns) and the same channels in gate, up
// (rows) and down (columns) of each block; a run stopped inside the stage resumes to the same losses.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IndexedAdapterState } from '@sparse/lora-variants';
import { loadPEFTAdapter } from '@sparse/lora-variants/node';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { startRun } from '../../run/runner.js';
import { expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-s2ft-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// grouped-query attention: 4 query heads of dim 4 over 2 KV heads; a gated MLP of 24 channels
const recipe = () =>
  resolveRecipe({
    seed: 2,
    model: { architecture: 'llama', d: 16, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 24, ctx: 16 },
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 2, batch: 4 },
      { stage: 'adapt', name: 'ft', method: 's2ft', config: { heads: 1, channels: 5, partialBackprop: true }, steps: 6, batch: 4, lr: 1e-2, checkpointEvery: 2 },
      { stage: 'export', formats: ['adapters'] },
    ],
  });

describe('s2ft adapt stage', () => {
  it('selects one head and five channels per block, the same across each coupled group', async () => {
    const dir = join(tmp, 'run');
    await startRun(recipe(), { dir, ...quiet });
    const [name] = readdirSync(join(dir, 'exports', 'adapters'));
    const a = await loadPEFTAdapter(join(dir, 'exports', 'adapters', name!));
    expect(a.variant).toBe('s2ft');
    const ch = (tail: string, b: number) => {
      const m = Object.entries(a.modules).find(([k]) => k.endsWith(`layers.${b}.${tail}`));
      expect(m, `${tail} of block ${b}`).toBeDefined();
      const s = m![1] as IndexedAdapterState;
      expect(s.params.s2ft_block!.data.some((v) => v !== 0), `${tail} of block ${b} trained`).toBe(true);
      return Array.from(s.indices.channels!);
    };
    const heads = new Set<number>();
    for (let b = 0; b < 2; b++) {
      const q = ch('self_attn.q_proj', b);
      expect(q).toHaveLength(4);
      const h = q[0]! / 4;
      heads.add(h);
      expect(q).toEqual([0, 1, 2, 3].map((t) => 4 * h + t));
      expect(ch('self_attn.o_proj', b)).toEqual(q);
      const kv = [0, 1, 2, 3].map((t) => 4 * Math.floor(h / 2) + t);
      expect(ch('self_attn.k_proj', b)).toEqual(kv);
      expect(ch('self_attn.v_proj', b)).toEqual(kv);
      const down = ch('mlp.down_proj', b);
      expect(down).toHaveLength(5);
      expect(ch('mlp.up_proj', b)).toEqual(down);
      expect(ch('mlp.gate_proj', b)).toEqual(down);
    }
  }, 300_000);

  it('stopped inside the stage, resumes to the losses and weights of an uninterrupted run', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe(), { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    await runWithStops(recipe(), broken, [{ stage: 1, step: 3, resumeAt: 2, state: 'batches' }]);
    await expectSameRun(whole, broken);
  }, 300_000);
});
