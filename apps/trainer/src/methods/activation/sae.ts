// TopK sparse autoencoders on a model's activations, from a recipe: the activation stage captures the
// activations of the chosen sites on the calibration windows, trains one TopK SAE per site
// (@sparse/activation/tfjs's trainSAE: exactly k latents per token, AuxK loss reviving dead latents,
// unit decoder columns), and measures each on the held-out data: normalized reconstruction error, dead
// latents, and the held-out perplexity with every trained SAE's reconstruction spliced in place of the
// activations (the usual fidelity check), next to the perplexity without. The SAEs are written to
// exports/sae/<stage>/<site>.safetensors. The model is not changed.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { saeToRecord, type Site, type TopKSAE } from '@sparse/activation';
import { reconstructSAE, trainSAE } from '@sparse/activation/tfjs';
import { tensor } from '@sparse/tensor';
import { writeSafetensorsFile } from '@sparse/tensor/node';
import { z } from 'zod';
import type { StageOf } from '../../recipe/schema.js';
import { calibrationBatches } from '../../stages/calibration.js';
import { exportNameOf, fileNameOf, type StageArgs, type StageOutcome } from '../../stages/common.js';
import { evaluatePerplexity } from '../../train/evaluate.js';
import type { TrainerMethod } from '../types.js';
import { captureSites } from './sparsify.js';

const SITE_ROLES = ['attn.qkv', 'attn.q', 'attn.k', 'attn.v', 'attn.out', 'mlp.up', 'mlp.gate', 'mlp.down', 'mlp.act'] as const;

export const saeMethodConfigSchema = z.strictObject({
  /** Sites to train an autoencoder on, by role (default the MLP activations). */
  roles: z.array(z.enum(SITE_ROLES)).min(1).default(['mlp.act']),
  /** Blocks (default every block). */
  blocks: z.array(z.int().min(0)).min(1).optional(),
  /** Latents as a multiple of the site's features (dictionary size), unless `latents` is given. */
  expansion: z.number().positive().default(4),
  latents: z.int().min(1).optional(),
  /** Latents each token keeps. */
  k: z.int().min(1).default(8),
  /** Adam steps per autoencoder, tokens per step and learning rate. */
  steps: z.int().min(0).default(300),
  batchSize: z.int().min(1).default(256),
  lr: z.number().positive().default(1e-3),
  /** Dead latents the AuxK loss uses per token (default half the features), its weight, and tokens without firing after which a latent is dead. */
  auxK: z.int().min(0).optional(),
  auxCoef: z.number().min(0).default(1 / 32),
  deadAfter: z.int().min(1).default(2048),
});

/** Σ‖x − x̂‖² and Σ‖x − μ‖² (μ the calibration mean) over the held-out tokens of one site. */
interface Fidelity {
  err: number;
  spread: number;
}

export const saeMethod: TrainerMethod<'activation'> = {
  kind: 'activation',
  name: 'topk-sae',
  describe: 'TopK sparse autoencoders (Gao et al.) on the chosen sites\' activations: exactly k latents per token, AuxK loss for dead latents; held-out NMSE, dead latents and spliced perplexity; the model is unchanged',
  paper: 'Gao et al. 2024, Scaling and evaluating sparse autoencoders',
  differs: [
    'the decoder gradient is not projected to be orthogonal to the columns (the columns are only renormalized after each step)',
    'the AuxK term is the plain MSE with the residual held constant, not a normalized MSE',
  ],
  schema: saeMethodConfigSchema,
  from: '@sparse/trainer',
  async run(args: StageArgs<StageOf<'activation'>>): Promise<StageOutcome> {
    const { ctx, stage, index, label } = args;
    const cfg = saeMethodConfigSchema.parse(stage.config);
    const acts = (s: Site) => (SITE_ROLES as readonly string[]).includes(s.role) && cfg.roles.includes(s.role as (typeof SITE_ROLES)[number]) && (cfg.blocks === undefined || cfg.blocks.includes(s.block));
    const samples = captureSites(ctx, 'topk-sae', acts, false, calibrationBatches(ctx, index, stage.calibrationData));
    const saes = new Map<string, { sae: TopKSAE; mean: Float64Array; dead: number; trainNMSE: number }>();
    for (const s of samples) {
      const f = s.site.features;
      const latents = cfg.latents ?? Math.max(cfg.k, Math.round(cfg.expansion * f));
      const r = trainSAE(s.x, s.tokens, f, {
        latents,
        k: Math.min(cfg.k, latents),
        steps: cfg.steps,
        batchSize: Math.min(cfg.batchSize, s.tokens),
        lr: cfg.lr,
        auxCoef: cfg.auxCoef,
        deadAfter: cfg.deadAfter,
        seed: ctx.recipe.seed,
        ...(cfg.auxK !== undefined ? { auxK: Math.min(cfg.auxK, latents) } : {}),
      });
      const mean = new Float64Array(f);
      for (let t = 0; t < s.tokens; t++) for (let j = 0; j < f; j++) mean[j]! += s.x[t * f + j]! / s.tokens;
      const last = r.history.at(-1);
      saes.set(s.site.name, { sae: r.sae, mean, dead: last?.dead ?? 0, trainNMSE: last?.nmse ?? Number.NaN });
    }
    // held-out: the model as it is, then with every autoencoder's reconstruction spliced in
    const heldOut = ctx.data.main.heldOut;
    const opts = { maxWindows: ctx.recipe.eval.windows > 0 ? ctx.recipe.eval.windows : undefined, batch: ctx.recipe.eval.batch };
    const base = ctx.hooks();
    const plain = evaluatePerplexity(ctx.model, heldOut, { ...opts, hooks: base });
    const fidelity = new Map<string, Fidelity>([...saes.keys()].map((k) => [k, { err: 0, spread: 0 }]));
    const spliced = evaluatePerplexity(ctx.model, heldOut, {
      ...opts,
      hooks: {
        ...base,
        activation: (site: Site, x: tf.Tensor2D) => {
          const r = base.activation ? base.activation(site, x) : x;
          const entry = saes.get(site.name);
          if (entry === undefined) return r;
          const input = r instanceof tf.Tensor ? r : r.x;
          const rec = reconstructSAE(entry.sae, input);
          const a = input.dataSync();
          const b = rec.dataSync();
          const fd = fidelity.get(site.name)!;
          const f = site.features;
          for (let i = 0; i < a.length; i++) {
            fd.err += (a[i]! - b[i]!) ** 2;
            fd.spread += (a[i]! - entry.mean[i % f]!) ** 2;
          }
          return r instanceof tf.Tensor ? rec : { x: rec, add: r.add };
        },
      },
    });
    const dir = join(ctx.dir, 'exports', 'sae', exportNameOf(ctx.recipe.stages, index));
    mkdirSync(dir, { recursive: true });
    const rows: { site: string; latents: number; k: number; dead: number; trainNMSE: number; heldOutNMSE: number }[] = [];
    for (const [site, e] of saes) {
      const { header, tensors } = saeToRecord(e.sae);
      const entries = Object.fromEntries(Object.entries(tensors).map(([n, v]) => [n, tensor(v, [v.length])]));
      const path = join(dir, `${fileNameOf(site)}.safetensors`);
      const bytes = await writeSafetensorsFile(path, entries, { format: 'sparse-topk-sae/1', site, header: JSON.stringify(header) });
      ctx.report.files.push({ label: `TopK SAE for ${site} (${e.sae.latents} latents, k ${e.sae.k})`, path, bytes });
      const fd = fidelity.get(site)!;
      rows.push({ site, latents: e.sae.latents, k: e.sae.k, dead: e.dead, trainNMSE: e.trainNMSE, heldOutNMSE: fd.spread > 0 ? fd.err / fd.spread : Number.NaN });
    }
    ctx.log.event({ event: 'sae', stage: index, label, sites: rows, perplexity: plain.perplexity, splicedPerplexity: spliced.perplexity });
    const mean = rows.reduce((a, r) => a + r.heldOutNMSE, 0) / Math.max(1, rows.length);
    const dead = rows.reduce((a, r) => a + r.dead, 0);
    const line = `${rows.length} TopK SAEs (k ${cfg.k}): held-out NMSE ${mean.toFixed(3)} (mean), ${dead} dead latents; perplexity ${plain.perplexity.toFixed(3)} -> ${spliced.perplexity.toFixed(3)} with the reconstructions spliced in`;
    ctx.log.say(`${label}: ${line}; saved to ${dir}`);
    return { summary: line };
  },
};
