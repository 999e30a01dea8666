// Layer-by-layer pruning with the @sparse/pruners methods, end to end on the embedded corpus: DSnoT against
// the Wanda mask it starts from, and the reconstruction errors each prune event reports.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { startRun } from '../../run/runner.js';

const silent = { write: () => true };
const EVAL = { windows: 64, batch: 16 };
let tmp: string;
let dense: string;

async function run(name: string, stages: Record<string, unknown>[], model: Record<string, unknown>) {
  const recipe = resolveRecipe({ name, seed: 3, model, eval: EVAL, stages });
  return startRun(recipe, { dir: join(tmp, name), mode: 'quiet', io: { stdout: silent, stderr: silent } });
}

function pruneEvents(name: string): Record<string, unknown>[] {
  const lines = readFileSync(join(tmp, name, 'metrics.jsonl'), 'utf8').trim().split('\n');
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === 'prune');
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-layerwise-'));
  // A small pretrained model (a few seconds): pruning it 65-70% costs perplexity Wanda and DSnoT can differ on.
  await run('dense', [{ stage: 'pretrain', steps: 250, lr: 0.01, batch: 16 }, { stage: 'export', formats: ['dense'] }], { architecture: 'gpt', d: 32, layers: 2, heads: 4, ctx: 32 });
  dense = join(tmp, 'dense', 'exports', 'model.safetensors');
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('layerwise prune methods', () => {
  it('DSnoT ends no worse in held-out perplexity than the Wanda mask it starts from (65% and 70% unstructured)', async () => {
    for (const sparsity of [0.65, 0.7]) {
      const prune = (name: string, method: string, config: Record<string, unknown>) =>
        run(name, [{ stage: 'prune', method, config: { sparsity, ...config } }, { stage: 'evaluate', name: 'pruned' }], { checkpoint: dense });
      const ppl = (s: Awaited<ReturnType<typeof run>>) => s.evaluations.find((e) => e.label === 'pruned')!.perplexity;
      const wanda = await prune(`wanda-${sparsity}`, 'wanda', {});
      // maxCycles 0: DSnoT's starting mask itself, which is Wanda's.
      const start = await prune(`dsnot0-${sparsity}`, 'dsnot', { maxCycles: 0 });
      const dsnot = await prune(`dsnot-${sparsity}`, 'dsnot', {});
      expect(ppl(start)).toBe(ppl(wanda));
      expect(ppl(dsnot)).not.toBe(ppl(start)); // it swapped something
      expect(ppl(dsnot), `${sparsity}`).toBeLessThanOrEqual(ppl(start));
      // Every layer reports its error, never above the one of the mask it started from.
      for (const e of pruneEvents(`dsnot-${sparsity}`)) {
        expect(e.reconstructionError as number).toBeLessThanOrEqual((e.reconstructionErrorInitial as number) * (1 + 1e-9));
      }
    }
  }, 120_000);

  it('SparseGPT logs the real reconstruction error and, apart, the dampened sum it minimized', async () => {
    await run('sparsegpt', [{ stage: 'prune', method: 'sparsegpt', config: { sparsity: 0.5 } }], { checkpoint: dense });
    const events = pruneEvents('sparsegpt');
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(e.reconstructionError as number).toBeGreaterThan(0);
      expect(e.reconstructionErrorDampened as number).toBeGreaterThan(e.reconstructionError as number);
      expect(e).not.toHaveProperty('error');
    }
  }, 120_000);
});

describe('channel permutation before N:M pruning', () => {
  it('keeps to permuteBudget and never lowers the kept magnitude', async () => {
    await run('permute-budget', [{ stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 }, permute: true, permuteBudget: { maxEvaluations: 32 } }], { checkpoint: dense });
    const lines = readFileSync(join(tmp, 'permute-budget', 'metrics.jsonl'), 'utf8').trim().split('\n');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === 'permutation');
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(e.evaluations as number).toBeLessThanOrEqual(32);
      expect(e.stopped).toBe('maxEvaluations');
      expect(e.keptAfter as number).toBeGreaterThan(e.keptBefore as number);
    }
  }, 60_000);
});
