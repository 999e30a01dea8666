// evaluate stage: held-out perplexity of the model as it is now (adapter included, if attached).

import { evaluatePerplexity } from '../train/evaluate.js';
import type { StageOf } from '../recipe/schema.js';
import type { RunContext } from '../run/context.js';
import type { StageArgs, StageOutcome } from './common.js';

/** Perplexity on a held-out stream, recorded for the report under `label`. */
export function measure(ctx: RunContext, which: 'heldout' | 'shifted', label: string): { perplexity: number; loss: number; tokens: number } {
  const tokens = which === 'shifted' ? ctx.data.shifted().heldOut : ctx.data.main.heldOut;
  const t0 = performance.now();
  const r = evaluatePerplexity(ctx.model, tokens, { hooks: ctx.hooks(), maxWindows: ctx.recipe.eval.windows > 0 ? ctx.recipe.eval.windows : undefined, batch: ctx.recipe.eval.batch });
  const ms = performance.now() - t0;
  const shown = which === 'shifted' ? `${label} (shifted task)` : label;
  ctx.report.evaluations.push({ label: shown, data: which, perplexity: r.perplexity, loss: r.loss, tokens: r.tokens });
  ctx.log.event({ event: 'eval', label, data: which, perplexity: r.perplexity, loss: r.loss, tokens: r.tokens, ms });
  ctx.log.say(`eval   ${shown}: held-out perplexity ${r.perplexity.toFixed(3)} (${r.loss.toFixed(4)} nats/token, ${r.tokens.toLocaleString('en-US')} tokens)`);
  return r;
}

export async function runEvaluateStage(args: StageArgs<StageOf<'evaluate'>>, after: string): Promise<StageOutcome> {
  const label = args.stage.name ?? after;
  const parts = args.stage.data.map((d) => `${d} ${measure(args.ctx, d, label).perplexity.toFixed(3)}`);
  return { summary: `perplexity ${parts.join(', ')}` };
}
