// The topk-sae activation method: one TopK autoencoder per chosen site, trained on the calibration
// activations; the saved file rebuilds it exactly; the logged held-out NMSE is the one computed here
// from the saved autoencoder; more steps reconstruct better; the model is unchanged.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSAE, encodeSAE, saeFromRecord } from '@sparse/activation';
import { openSafetensors } from '@sparse/tensor/node';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRecipe } from '../../recipe/load.js';
import { readCheckpoint } from '../../run/checkpoint.js';
import { startRun } from '../../run/runner.js';
import { events, quiet } from '../../testing/resume.js';

const tmp = mkdtempSync(join(tmpdir(), 'sparse-sae-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface SaeEvent {
  sites: { site: string; latents: number; k: number; dead: number; heldOutNMSE: number }[];
  perplexity: number;
  splicedPerplexity: number;
}

async function run(name: string, steps: number): Promise<{ dir: string; e: SaeEvent }> {
  const recipe = resolveRecipe({
    seed: 2,
    model: { architecture: 'gpt', d: 16, layers: 2, heads: 2, ctx: 16 },
    eval: { windows: 8, batch: 4 },
    stages: [
      { stage: 'pretrain', steps: 15, batch: 4 },
      { stage: 'calibrate', windows: 32 },
      { stage: 'activation', name: 'sae', method: 'topk-sae', config: { k: 4, expansion: 2, steps, batchSize: 128, lr: 0.01 } },
    ],
  });
  const dir = join(tmp, name);
  await startRun(recipe, { dir, ...quiet });
  return { dir, e: events(dir).find((x) => x.event === 'sae') as unknown as SaeEvent };
}

describe('topk-sae activation method', () => {
  it('trains one autoencoder per MLP activation, saves it, and its held-out error falls with training', async () => {
    const short = await run('short', 2);
    const long = await run('long', 150);
    expect(long.e.sites.map((s) => s.site).sort()).toEqual(['h.0.mlp.act', 'h.1.mlp.act']);
    for (const s of long.e.sites) {
      expect(s.latents).toBe(128);
      expect(s.k).toBe(4);
      const before = short.e.sites.find((x) => x.site === s.site)!.heldOutNMSE;
      expect(s.heldOutNMSE).toBeLessThan(before);
      expect(s.heldOutNMSE).toBeLessThan(1);
    }
    expect(Number.isFinite(long.e.splicedPerplexity)).toBe(true);
    // the file rebuilds the autoencoder: exactly k latents per token
    const dir = join(long.dir, 'exports', 'sae', 'sae');
    expect(readdirSync(dir).sort()).toEqual(['h.0.mlp.act.safetensors', 'h.1.mlp.act.safetensors']);
    const reader = await openSafetensors(join(dir, 'h.0.mlp.act.safetensors'));
    const tensors: Record<string, Float32Array> = {};
    for (const name of reader.names) tensors[name] = Float32Array.from((await reader.readTensor(name)).data as Float32Array);
    const header = JSON.parse(reader.metadata.header!) as unknown;
    await reader.close();
    const sae = saeFromRecord({ header, tensors });
    const x = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i));
    const code = encodeSAE(sae, x, 3);
    expect(code.k).toBe(4);
    expect(decodeSAE(sae, code)).toHaveLength(3 * 64);
    // the model itself did not change: no activation sparsifier in the checkpoint
    expect((await readCheckpoint(long.dir)).activation).toBeUndefined();
  }, 300_000);
});
