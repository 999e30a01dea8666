// Mask statistics: maskChange against a brute-force count over boolean arrays (regrown, pruned, SAD as
// the flipped entries of Zhou et al., and the Jaccard distance of the kept sets), and in a RigL run: every step event carries the linear sparsity and FLOPs
// computed here from the final masks, each rewiring shows up as a 'masks' event on the next step with
// as many connections regrown and pruned per layer as the update rewired, and the report's trace adds
// them up and renders a section.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { count, maskFromBooleans } from '@sparse/masks';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../recipe/load.js';
import { readCheckpoint } from '../run/checkpoint.js';
import { startRun } from '../run/runner.js';
import { events, quiet } from '../testing/resume.js';
import { maskChange } from './mask-stats.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-mask-stats-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('maskChange', () => {
  it('counts regrown and pruned entries and the Jaccard distance of the kept sets, brute force', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 90 }).chain((n) => fc.tuple(fc.option(fc.array(fc.boolean(), { minLength: n, maxLength: n })), fc.option(fc.array(fc.boolean(), { minLength: n, maxLength: n })), fc.constant(n))),
        ([a, b, n]) => {
          const before = a === null ? new Array<boolean>(n).fill(true) : a;
          const after = b === null ? new Array<boolean>(n).fill(true) : b;
          let regrown = 0;
          let pruned = 0;
          let both = 0;
          let either = 0;
          for (let i = 0; i < n; i++) {
            if (after[i] && !before[i]) regrown++;
            if (before[i] && !after[i]) pruned++;
            if (before[i] && after[i]) both++;
            if (before[i] || after[i]) either++;
          }
          const c = maskChange(a === null ? undefined : maskFromBooleans(a, [n]), b === null ? undefined : maskFromBooleans(b, [n]), n);
          expect(c.regrown).toBe(regrown);
          expect(c.pruned).toBe(pruned);
          expect(c.before).toBe(before.filter(Boolean).length);
          expect(c.after).toBe(after.filter(Boolean).length);
          expect(c.sad).toBe(before.filter((x, i) => x !== after[i]).length);
          expect(c.jaccard).toBeCloseTo(either === 0 ? 0 : 1 - both / either, 12);
        },
      ),
    );
  });
});

interface StepEvent {
  event: 'step';
  stage: number;
  step: number;
  sparsity?: number;
  flops?: { dense: number; sparse: number };
}
interface MasksEvent {
  event: 'masks';
  stage: number;
  step: number;
  sparsity: number;
  layers: Record<string, number>;
  regrown: Record<string, number>;
  pruned: Record<string, number>;
  sad: Record<string, number>;
  sadAll: number;
  sadRate: Record<string, number>;
  jaccard: Record<string, number>;
}

describe('in a run', () => {
  it('rigl: step events carry sparsity and FLOPs, every rewiring is a masks event, the report sums them', async () => {
    const model = { architecture: 'gpt' as const, d: 16, layers: 1, heads: 2, ctx: 16 };
    const stage = { stage: 'train', method: 'rigl', config: { sparsity: 0.8, budget: 'erk', every: 2, end: 0.75, fraction: 0.5 }, steps: 8, batch: 4, lr: 1e-2 };
    const recipe = resolveRecipe({ seed: 3, model, eval: { windows: 2, batch: 2 }, stages: [stage, { stage: 'report' }] });
    const dir = join(tmp, 'rigl');
    await startRun(recipe, { dir, ...quiet });
    const cp = await readCheckpoint(dir);
    // sizes and kept counts from the final masks (RigL keeps every layer's count, so they hold at every step)
    const masks = [...cp.masks.entries()];
    const size = masks.reduce((n, [, m]) => n + m.shape[0]! * m.shape[1]!, 0);
    const kept = masks.reduce((n, [, m]) => n + count(m), 0);
    const all = events(dir) as unknown[];
    const steps = all.filter((e): e is StepEvent => (e as StepEvent).event === 'step');
    expect(steps).toHaveLength(8);
    const tokens = 4 * 16;
    for (const s of steps) {
      expect(s.sparsity).toBeCloseTo(1 - kept / size, 12);
      expect(s.flops).toEqual({ dense: 6 * tokens * size, sparse: 6 * tokens * kept });
    }
    const rewires = all.filter((e) => (e as { event: string }).event === 'rewire') as { step: number; rewired: Record<string, number> }[];
    const changes = all.filter((e): e is MasksEvent => (e as MasksEvent).event === 'masks');
    // the first step's event lists every layer; then one per update, on the step after it
    expect(changes.map((c) => c.step)).toEqual([1, ...rewires.map((r) => r.step + 1)]);
    expect(Object.keys(changes[0]!.layers).sort()).toEqual(masks.map(([n]) => n).sort());
    for (const [i, r] of rewires.entries()) {
      const c = changes[i + 1]!;
      for (const [n, d] of Object.entries(r.rewired)) {
        if (d === 0) continue;
        expect(c.regrown[n], n).toBe(d);
        expect(c.pruned[n], n).toBe(d);
        // d regrown and d pruned: SAD = 2d flipped entries; equal counts: 1 − IoU = 1 - (k - d) / (k + d)
        const k = count(cp.masks.get(n)!);
        const m = cp.masks.get(n)!;
        expect(c.sad[n]).toBe(2 * d);
        expect(c.sadRate[n]).toBeCloseTo((2 * d) / (m.shape[0]! * m.shape[1]!), 12);
        expect(c.jaccard[n]).toBeCloseTo(1 - (k - d) / (k + d), 12);
      }
    }
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('Masks during training');
    expect(existsSync(join(dir, 'plots', 'masks.png'))).toBe(true);
    // the stage's own masks were drawn before its first step: the trace counts the rewirings only
    const trace = cp.report.maskTraces![0]!;
    const total = rewires.reduce((n, r) => n + Object.values(r.rewired).reduce((a, b) => a + b, 0), 0);
    expect(trace.updates).toBe(rewires.filter((r) => Object.values(r.rewired).some((d) => d > 0)).length);
    expect(trace.regrown).toBe(total);
    expect(trace.pruned).toBe(total);
    expect(trace.points).toHaveLength(8);
    expect(trace.sparseFlops / trace.denseFlops).toBeCloseTo(kept / size, 12);
  }, 120_000);
});
