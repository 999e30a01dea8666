// train method 'nm' with progressive gradient flow's MDGF (mask decay) and SDGF (structure decay): SDGF's
// run masks at every frame are exactly that frame's N:M pattern (counted group by group here); MDGF's
// first step sees the dense weights (beta = 1: the same loss as dense training on the same batch); both
// end on a hard n:m mask with exact zeros and resume exactly from checkpoints inside their decays.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKept, type Mask } from '@sparse/masks';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint, type CheckpointContent } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, expectSameRun, quiet, runWithStops } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-nm-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MODEL = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
const LINEARS = ['h.0.attn.c_attn.weight', 'h.0.attn.c_proj.weight', 'h.0.mlp.c_fc.weight', 'h.0.mlp.c_proj.weight'];

/** Every group of m consecutive entries along each row keeps exactly n (counted, not through isNM). */
function expectExactNM(mask: Mask, n: number, m: number, where: string): void {
  const [rows, cols] = mask.shape as [number, number];
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < cols; g += m) {
      let kept = 0;
      for (let j = g; j < g + m; j++) if (isKept(mask, r * cols + j)) kept++;
      expect(kept, `${where}: row ${r}, group at ${g}`).toBe(n);
    }
  }
}

function expectZeroOff(cp: CheckpointContent, name: string): void {
  const m = cp.masks.get(name)!;
  const w = cp.params.get(name)!.data;
  for (let q = 0; q < w.length; q++) if (!isKept(m, q)) expect(w[q], `${name}[${q}]`).toBe(0);
}

const recipeWith = (config: Record<string, unknown>, steps = 8, method = 'nm') =>
  resolveRecipe({
    seed: 3,
    model: MODEL,
    eval: { windows: 4, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 3, batch: 4 },
      { stage: 'train', method, config, steps, batch: 4, lr: 1e-2, checkpointEvery: 1 },
      { stage: 'evaluate' },
    ],
  });

describe('train method nm: structure decay (SDGF)', () => {
  it('1:8 stepwise over 8 steps: 7:8 at steps 1-2, 4:8 at 3-4, 2:8 at 5-6, 1:8 at 7-8, then hard 1:8; resumes exactly', async () => {
    const recipe = recipeWith({ n: 1, m: 8, estimator: 'structure-decay', structureDecay: 'stepwise' });
    const whole = join(tmp, 'sdgf-whole');
    await startRun(recipe, { dir: whole, ...quiet });
    const end = await readCheckpoint(whole);
    for (const n of LINEARS) {
      expectExactNM(end.masks.get(n)!, 1, 8, `end ${n}`);
      expectZeroOff(end, n);
    }
    expect(end.pattern).toEqual({ n: 1, m: 8 });

    // a checkpoint after step s holds the masks step s ran with: frame of s - 1
    const frameN = (s: number) => [7, 7, 4, 4, 2, 2, 1, 1][s - 1]!;
    const broken = join(tmp, 'sdgf-broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(
      recipe,
      broken,
      [1, 2, 3, 5, 7].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'nmPattern' })),
      (s, cp) => void seen.set(s.resumeAt, cp),
    );
    for (const [s, cp] of seen) {
      expect(cp.stageState!.nmPattern, `checkpoint at ${s}`).toBe(`${frameN(s)}:8`);
      expect(cp.pattern, `checkpoint at ${s}`).toEqual({ n: frameN(s), m: 8 });
      for (const n of LINEARS) expectExactNM(cp.masks.get(n)!, frameN(s), 8, `checkpoint at ${s}, ${n}`);
    }
    await expectSameRun(whole, broken);
  }, 300_000);

  it('geometric frames must fit the layers: 1:8 needs 64 inputs for 8:64, the error names the field', async () => {
    const recipe = recipeWith({ n: 1, m: 8, estimator: 'structure-decay', structureDecay: 'geometric' });
    await expect(startRun(recipe, { dir: join(tmp, 'sdgf-geo'), ...quiet })).rejects.toThrow(/stages\[1\]\.config\.structureDecay: .* not a multiple of m = 64/);
  }, 120_000);
});

describe('train method nm: mask decay (MDGF)', () => {
  const stepLosses = (dir: string) => events(dir).filter((e) => e.event === 'step' && e.stage === 1).map((e) => e.loss!);

  it('beta = 1 at the first step (the dense loss), then a hard 2:4 mask; resumes exactly mid-decay', async () => {
    const config = { n: 2, m: 4, estimator: 'mask-decay', decayShape: 'linear', decayRate: 0.2 };
    const whole = join(tmp, 'mdgf-whole');
    await startRun(recipeWith(config), { dir: whole, ...quiet });
    const dense = join(tmp, 'mdgf-dense');
    await startRun(recipeWith({}, 8, 'dense'), { dir: dense, ...quiet });
    const ste = join(tmp, 'mdgf-ste');
    await startRun(recipeWith({ n: 2, m: 4, estimator: 'ste' }), { dir: ste, ...quiet });
    // same weights and batch at step 1: the decayed mask is all ones, the STE mask is not
    expect(stepLosses(whole)[0]).toBeCloseTo(stepLosses(dense)[0]!, 6);
    expect(Math.abs(stepLosses(ste)[0]! - stepLosses(dense)[0]!)).toBeGreaterThan(1e-4);
    const end = await readCheckpoint(whole);
    for (const n of LINEARS) {
      expectExactNM(end.masks.get(n)!, 2, 4, `end ${n}`);
      expectZeroOff(end, n);
    }
    const broken = join(tmp, 'mdgf-broken');
    const seen = new Map<number, CheckpointContent>();
    await runWithStops(recipeWith(config), broken, [2, 4].map((s) => ({ stage: 1, step: s + 1, resumeAt: s, state: 'maskDecay' })), (s, cp) => void seen.set(s.resumeAt, cp));
    // the factor the checkpoint's last step used: max(0, 1 - 0.2 (s - 1))
    expect(seen.get(2)!.stageState!.maskDecay).toBeCloseTo(0.8, 12);
    expect(seen.get(4)!.stageState!.maskDecay).toBeCloseTo(0.4, 12);
    await expectSameRun(whole, broken);
  }, 300_000);
});
