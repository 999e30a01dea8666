// train method 'bdwp': the masks a step uses are the row-wise (forward) and column-wise (input gradient)
// 2:4 masks of the weights before it (checked against nmMask of the previous checkpoint's weights); the
// products themselves are bidirectionalMaskedLinear's, tested against dense loops in @sparse/nm. The run
// ends row-wise 2:4 with exact zeros, and a stopped run resumes to the same losses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { equals, isKept } from '@sparse/masks';
import { isNM, nmMask } from '@sparse/nm';
import { tensor } from '@sparse/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-bdwp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];

const recipe = (config: Record<string, unknown> = { n: 2, m: 4, lambda: 0.0002 }) =>
  resolveRecipe({
    seed: 9,
    model: MODEL,
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'train', method: 'bdwp', config, steps: 6, batch: 4, lr: 1e-2, checkpointEvery: 1 },
      { stage: 'evaluate' },
    ],
  });

describe('train method bdwp', () => {
  it('uses the row and column 2:4 masks of the weights before each step, ends row-wise 2:4, resumes exactly', async () => {
    const whole = join(tmp, 'whole');
    await startRun(recipe(), { dir: whole, ...quiet });
    const broken = join(tmp, 'broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(recipe(), broken, [2, 3].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'bdwpColumnMasks' })), (s, cp) => void seen.set(s.resumeAt, cp));
    await expectSameRun(whole, broken);

    const [at2, at3] = [seen.get(2)!, seen.get(3)!];
    const cols = at3.stageState!.bdwpColumnMasks as Record<string, Int32Array>;
    for (const n of LINEARS) {
      const p = at2.params.get(n)!;
      const w = tensor(p.data, p.shape);
      // step 3 ran with the masks of the weights after step 2
      expect(equals(at3.masks.get(n)!, nmMask(w, { n: 2, m: 4, axis: 'row' })), `${n} row`).toBe(true);
      const col = { shape: p.shape, bits: new Uint32Array(cols[n]!.buffer, cols[n]!.byteOffset, cols[n]!.length) };
      expect(equals(col, nmMask(w, { n: 2, m: 4, axis: 'column' })), `${n} column`).toBe(true);
      expect(isNM(col, { n: 2, m: 4, axis: 'column', exact: true }).valid, n).toBe(true);
      expect(equals(col, at3.masks.get(n)!), `${n}: the two masks differ`).toBe(false);
      // training stays dense in between: some forward-pruned weights are non-zero
      expect(Array.from(at3.params.get(n)!.data).some((x, q) => !isKept(at3.masks.get(n)!, q) && x !== 0), n).toBe(true);
    }
    const end = await readCheckpoint(whole);
    for (const n of LINEARS) {
      const m = end.masks.get(n)!;
      expect(isNM(m, { n: 2, m: 4, exact: true }).valid, n).toBe(true);
      const w = end.params.get(n)!.data;
      for (let q = 0; q < w.length; q++) if (!isKept(m, q)) expect(w[q], `${n}[${q}]`).toBe(0);
    }
    expect(end.pattern).toEqual({ n: 2, m: 4 });
  }, 300_000);

  it('refuses a layer whose outputs are not a multiple of m, naming the field', async () => {
    // the MLP down projection is [16, 64]: its 64 inputs take m = 32, its 16 outputs do not
    const r = recipe({ n: 2, m: 32 });
    const bad = resolveRecipe({ ...r, stages: r.stages.map((s, i) => (i === 1 ? { ...s, targets: ['h.0.mlp.c_proj.weight'] } : s)) } as never);
    await expect(startRun(bad, { dir: join(tmp, 'bad'), ...quiet })).rejects.toThrow(/stages\[1\]\.config\.m: h\.0\.mlp\.c_proj\.weight has 16 outputs/);
  }, 60_000);
});
