// Trainer-level quality on the embedded corpus (seeded, small): what the methods promise shows up in
// held-out perplexity. One dense model is pretrained once; every branch starts from its checkpoint.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNM } from '@sparse/nm';
import { resolveRecipe } from '../recipe/load.js';
import { loadExportedModel } from '../stages/export.js';
import { startRun } from './runner.js';

const silent = { write: () => true };
const EVAL = { windows: 64, batch: 16 };
let tmp: string;
let dense: string;
let densePpl: number;

async function run(name: string, stages: Record<string, unknown>[], model: Record<string, unknown>) {
  const recipe = resolveRecipe({ name, seed: 3, model, eval: EVAL, stages });
  return startRun(recipe, { dir: join(tmp, name), mode: 'quiet', io: { stdout: silent, stderr: silent } });
}

const fromDense = () => ({ checkpoint: dense });
const ppl = (s: Awaited<ReturnType<typeof run>>, label: string) => s.evaluations.find((e) => e.label === label)!.perplexity;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sparse-quality-'));
  const s = await run('dense', [{ stage: 'pretrain', steps: 250, lr: 0.01, batch: 16 }, { stage: 'evaluate', name: 'dense' }, { stage: 'export', formats: ['dense'] }], { architecture: 'gpt', d: 32, layers: 2, heads: 4, ctx: 32 });
  densePpl = ppl(s, 'dense');
  dense = join(tmp, 'dense', 'exports', 'model.safetensors');
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('quality on the embedded corpus', () => {
  it('2:4 pruning raises perplexity, SparseGPT less than magnitude, and SQFT recovery lowers it again', async () => {
    const mag = await run('magnitude', [{ stage: 'prune', method: 'magnitude', config: { n: 2, m: 4 } }, { stage: 'evaluate', name: 'pruned' }], fromDense());
    const sgpt = await run('sparsegpt', [
      { stage: 'prune', method: 'sparsegpt', config: { n: 2, m: 4 } },
      { stage: 'evaluate', name: 'pruned' },
      { stage: 'adapt', method: 'sqft', config: { r: 8, alpha: 16 }, steps: 60, lr: 0.005, batch: 16 },
      { stage: 'evaluate', name: 'recovered' },
    ], fromDense());
    expect(ppl(mag, 'pruned')).toBeGreaterThan(densePpl * 1.02);
    expect(ppl(sgpt, 'pruned')).toBeGreaterThan(densePpl);
    expect(ppl(sgpt, 'pruned')).toBeLessThan(ppl(mag, 'pruned'));
    expect(ppl(sgpt, 'recovered')).toBeLessThan(ppl(sgpt, 'pruned'));
  }, 300_000);

  it('LoRA on a 2:4 base trains through the mask: its merged model is the one SQFT gives, still 2:4', async () => {
    const stages = (method: string) => [
      { stage: 'prune', method: 'sparsegpt', config: { n: 2, m: 4 } },
      { stage: 'adapt', method, config: { r: 4, alpha: 8 }, steps: 20, lr: 0.005, batch: 8 },
      { stage: 'evaluate', name: 'adapted' },
      { stage: 'export', formats: ['dense'] },
    ];
    const lora = await run('lora', stages('lora'), fromDense());
    const sqft = await run('sqft', stages('sqft'), fromDense());
    expect(ppl(lora, 'adapted')).toBeCloseTo(ppl(sqft, 'adapted'), 4);
    const a = await loadExportedModel(join(tmp, 'lora', 'exports', 'model.safetensors'));
    const b = await loadExportedModel(join(tmp, 'sqft', 'exports', 'model.safetensors'));
    try {
      for (const l of a.linears()) {
        const wa = a.params[l.name]!.dataSync() as Float32Array;
        const wb = b.params[l.name]!.dataSync() as Float32Array;
        let diff = 0;
        for (let k = 0; k < wa.length; k++) diff = Math.max(diff, Math.abs(wa[k]! - wb[k]!));
        expect(diff, l.name).toBeLessThan(1e-5);
        const t = { data: wa, shape: [l.out, l.in], stride: [l.in, 1], offset: 0, dtype: 'float32' as const };
        expect(isNM(t, { n: 2, m: 4 }).valid, l.name).toBe(true);
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  }, 300_000);
});
