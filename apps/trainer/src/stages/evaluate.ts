// evaluate stage: held-out perplexity of the model as it is now (adapter included, if attached).

import * as tf from '@tensorflow/tfjs-core';
import { variants } from '@sparse/lora-variants';
import { getTfForm } from '@sparse/lora-variants/tfjs';
import { ArgumentError, Random } from '@sparse/tensor';
import { evaluateEnsemblePerplexity, evaluatePerplexity } from '../train/evaluate.js';
import { overallDensity } from '../methods/activation/sparsify.js';
import { describeSummary, emptyCounts, summarizeCounts } from '../methods/attention/counts.js';
import { kvHeadsOf } from '../methods/attention/stage.js';
import { modelSites } from '../model/sites.js';
import type { ForwardHooks } from '../model/types.js';
import type { StageOf } from '../recipe/schema.js';
import type { AttentionCounts, RunContext } from '../run/context.js';
import type { StageArgs, StageOutcome } from './common.js';

/**
 * The forward hooks of one LoRA Dropout sample: every targeted weight is W + (W_eff − W) ⊙ m_B m_Aᵀ / (1 − p)²,
 * with W_eff the adapter's expected weight (W + ΔW through the base mask) and 0/1 masks m_B [out], m_A [in]
 * kept with probability 1 − p, drawn in that order from Random(seed).fork(`sample:${sample}`).fork(weight name):
 * the training-time dropout of the lora-dropout form, reproducible from (seed, sample).
 */
export function loraDropoutSampleHooks(ctx: RunContext, seed: number, sample: number): ForwardHooks {
  const rec = ctx.adapter;
  const ensemble = rec === undefined ? undefined : getTfForm(rec.variant)?.testTimeEnsemble;
  if (rec === undefined || ensemble === undefined) {
    const able = variants.entries().filter((v) => getTfForm(v.name)?.testTimeEnsemble !== undefined).map((v) => v.name);
    throw new ArgumentError(`evaluate ensemble: needs a ${able.join(' or ')} adapter attached and unmerged (${rec === undefined ? 'none is attached' : `'${rec.variant}' is attached`})`);
  }
  const adapter = rec.model;
  const states = adapter.adapterStates();
  const base = ctx.hooks();
  const rng = new Random(seed).fork(`sample:${sample}`);
  const masks = new Map<string, { rows: Float32Array; cols: Float32Array; keep: number }>();
  for (const name of Object.keys(states).sort()) {
    const s = states[name]!;
    const keep = 1 - ensemble.dropout(s.config);
    const r = rng.fork(name);
    const [out, inp] = s.shape;
    const rows = Float32Array.from({ length: out }, () => (r.uniform() < keep ? 1 : 0));
    const cols = Float32Array.from({ length: inp }, () => (r.uniform() < keep ? 1 : 0));
    masks.set(name, { rows, cols, keep });
  }
  return {
    ...base,
    weight: (name, p) => {
      const m = masks.get(name);
      if (m === undefined) return base.weight ? base.weight(name, p) : p;
      return tf.tidy(() => {
        const w = adapter.weights[name]!;
        // the expected weight, whatever the adapter's training flag (training would draw the form's own masks)
        const was = adapter.training;
        adapter.training = false;
        let eff: tf.Tensor;
        try {
          eff = adapter.effectiveWeight(name);
        } finally {
          adapter.training = was;
        }
        const d = tf.sub(eff, w);
        const drop = tf.mul(tf.tensor2d(m.rows, [m.rows.length, 1]), tf.tensor2d(m.cols, [1, m.cols.length]));
        return tf.add(w, tf.div(tf.mul(d, drop), m.keep * m.keep));
      });
    },
  };
}

/** The achieved activation density of an evaluation, per site and overall, into the report and the metrics. */
function recordDensity(ctx: RunContext, label: string, method: string, counts: ReadonlyMap<string, { kept: number; total: number }>): void {
  const sites = new Map(modelSites(ctx.linears()).map((s) => [s.name, s]));
  const rows = [...counts].map(([name, c]) => ({ site: name, role: sites.get(name)?.role ?? '', block: sites.get(name)?.block ?? -1, density: c.total === 0 ? 1 : c.kept / c.total }));
  const overall = overallDensity(counts);
  (ctx.report.activations ??= []).push({ label, method, sites: rows, overall });
  ctx.log.event({ event: 'activation-density', label, method, overall, sites: Object.fromEntries(rows.map((r) => [r.site, r.density])) });
  ctx.log.say(`eval   ${label}: ${method} keeps ${(100 * overall).toFixed(1)}% of activations at its ${rows.length} sites`);
}

/** What the sparse attention computed in an evaluation (tiles, or K / V sparsity and cache bytes), into the report and the metrics. */
function recordAttention(ctx: RunContext, label: string, method: string, counts: AttentionCounts, positions: number): void {
  const summary = summarizeCounts(counts, positions, kvHeadsOf(ctx));
  if (summary === undefined) return;
  (ctx.report.attention ??= []).push({ label, method, ...summary });
  ctx.log.event({ event: 'attention-density', label, method, ...summary });
  ctx.log.say(`eval   ${label}: ${method} ${describeSummary(summary)}`);
}

/** Perplexity on a held-out stream, recorded for the report under `label`. */
export function measure(ctx: RunContext, which: 'heldout' | 'shifted', label: string, ensemble?: { samples: number; seed: number }): { perplexity: number; loss: number; tokens: number } {
  const tokens = which === 'shifted' ? ctx.data.shifted().heldOut : ctx.data.main.heldOut;
  const t0 = performance.now();
  const act = ctx.activation;
  const counts = act && !ensemble ? new Map<string, { kept: number; total: number }>() : undefined;
  ctx.activationCounts = counts;
  const attn = ctx.attention;
  const attnCounts = attn && !ensemble ? emptyCounts() : undefined;
  ctx.attentionCounts = attnCounts;
  const opts = { maxWindows: ctx.recipe.eval.windows > 0 ? ctx.recipe.eval.windows : undefined, batch: ctx.recipe.eval.batch };
  let r: { perplexity: number; loss: number; tokens: number };
  try {
    r = ensemble
      ? evaluateEnsemblePerplexity(ctx.model, tokens, { ...opts, samples: ensemble.samples, hooksFor: (n) => loraDropoutSampleHooks(ctx, ensemble.seed, n) })
      : evaluatePerplexity(ctx.model, tokens, { ...opts, hooks: ctx.hooks() });
  } finally {
    ctx.activationCounts = undefined;
    ctx.attentionCounts = undefined;
  }
  const ms = performance.now() - t0;
  const shown = which === 'shifted' ? `${label} (shifted task)` : label;
  if (act && counts) recordDensity(ctx, shown, act.method, counts);
  if (attn && attnCounts) recordAttention(ctx, shown, attn.method, attnCounts, Math.min(ctx.model.spec.ctx, tokens.length - 1));
  ctx.report.evaluations.push({ label: shown, data: which, perplexity: r.perplexity, loss: r.loss, tokens: r.tokens });
  ctx.log.event({ event: 'eval', label, data: which, perplexity: r.perplexity, loss: r.loss, tokens: r.tokens, ms });
  ctx.log.say(`eval   ${shown}: held-out perplexity ${r.perplexity.toFixed(3)} (${r.loss.toFixed(4)} nats/token, ${r.tokens.toLocaleString('en-US')} tokens)`);
  return r;
}

export async function runEvaluateStage(args: StageArgs<StageOf<'evaluate'>>, after: string): Promise<StageOutcome> {
  const e = args.stage.ensemble;
  const ensemble = e ? { samples: e.samples, seed: e.seed ?? args.ctx.recipe.seed } : undefined;
  const label = (args.stage.name ?? after) + (ensemble ? ` (ensemble of ${ensemble.samples})` : '');
  const parts = args.stage.data.map((d) => `${d} ${measure(args.ctx, d, label, ensemble).perplexity.toFixed(3)}`);
  return { summary: `perplexity ${parts.join(', ')}${ensemble ? `, averaged over ${ensemble.samples} LoRA Dropout masks (seed ${ensemble.seed})` : ''}` };
}
