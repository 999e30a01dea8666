// 'sparselora-svd': SparseLoRA's SVD sparsity estimator as an activation method. The MLP's input site
// (the gate's for a gated MLP, the up projection's for a plain one) estimates the channel scores from
// rank-r factors of the gate and up weights and records the top `keep` fraction; the MLP activation site
// 'mlp.act', visited later in the same forward, zeroes the other channels.

import { ArgumentError } from '@sparse/tensor';
import { z } from 'zod';
import type { ActivationMethod, Site, SiteSample, SiteSparsifier } from '../types.js';
import { estimateScores, exactScores, type LowRankFactors, type MlpActivationKind, type SVDEstimator, svdEstimator } from './estimator.js';
import { groupLayers, mlpPrefix, MLP_INPUT_ROLES, passThrough } from './layers.js';
import { LayerLink, restoredLink } from './link.js';
import { keepCount, recall, selectionMask, topRows } from './select.js';
import { consumerSparsifier, recorderSparsifier } from './sparsifiers.js';

export const sparseLoraConfigSchema = z.strictObject({
  /** Rank of the gate and up factors (capped by the weights' smaller dimension). Higher: better recall, more work. */
  rank: z.int().min(1).default(8),
  /** Fraction of the MLP's channels kept per token. */
  keep: z.number().gt(0).max(1).default(0.5),
  /** The MLP's nonlinearity, applied to the estimated gate (or pre-activation of a plain MLP). */
  activation: z.enum(['silu', 'gelu', 'relu', 'relu2']).default('silu'),
  /** Blocks whose MLPs are predicted (default every block). SparseLoRA leaves the most sensitive layers dense. */
  blocks: z.array(z.int().min(0)).optional(),
});

export type SparseLoraConfig = z.output<typeof sparseLoraConfigSchema>;
export type SparseLoraConfigInput = z.input<typeof sparseLoraConfigSchema>;

interface FactorsState {
  out: number;
  in: number;
  rank: number;
  left: number[];
  right: number[];
}

/** What each site's sparsifier saves. */
export type SparseLoraState =
  | { role: 'record'; layer: string; activation: MlpActivationKind; k: number; up: FactorsState; gate?: FactorsState; recall: number }
  | { role: 'consume'; layer: string }
  | { role: 'pass'; layer: string };

const factorsState = (f: LowRankFactors): FactorsState => ({ out: f.out, in: f.in, rank: f.rank, left: Array.from(f.left), right: Array.from(f.right) });
const factorsFrom = (s: FactorsState): LowRankFactors => ({ out: s.out, in: s.in, rank: s.rank, left: Float64Array.from(s.left), right: Float64Array.from(s.right) });

function recorder(site: Site, link: LayerLink, est: SVDEstimator, k: number, saved: SparseLoraState): SiteSparsifier {
  const hidden = est.up.out;
  return recorderSparsifier(site, link, (x, tokens) => selectionMask(topRows(estimateScores(est, x, tokens), tokens, hidden, k)), () => saved);
}

function calibrate(config: SparseLoraConfig, samples: readonly SiteSample[]): SiteSparsifier[] {
  const { mlps, attns } = groupLayers('sparselora-svd', samples);
  if (attns.length > 0) throw new ArgumentError(`sparselora-svd: acts on MLPs only, got attention sites (${attns[0]!.input.site.name})`);
  const out = new Map<string, SiteSparsifier>();
  for (const m of mlps) {
    const input = (m.gate ?? m.up)!;
    const up = m.up;
    if (up === undefined) throw new ArgumentError(`sparselora-svd: MLP '${m.key}' has a gate sample but no mlp.up sample`);
    for (const s of [m.gate, up]) {
      if (s && s.weight === undefined) throw new ArgumentError(`sparselora-svd: sample of ${s.site.name} has no weight (the method needs: ['weight'])`);
    }
    const hidden = m.act.site.features;
    const d = input.site.features;
    const rank = Math.min(config.rank, hidden, d);
    const weights = { activation: config.activation, up: up.weight!.data, ...(m.gate ? { gate: m.gate.weight!.data } : {}), hidden, d };
    if (up.weight!.out !== hidden || up.weight!.in !== d || (m.gate && (m.gate.weight!.out !== hidden || m.gate.weight!.in !== d))) {
      throw new ArgumentError(`sparselora-svd: MLP '${m.key}': weights must be [${hidden}, ${d}] to match its sites`);
    }
    const est = svdEstimator({ ...weights, rank });
    const k = keepCount(config.keep, hidden);
    const tokens = input.tokens;
    const r = tokens === 0 ? 1 : recall(topRows(estimateScores(est, input.x, tokens), tokens, hidden, k), topRows(exactScores(weights, input.x, tokens), tokens, hidden, k));
    const saved: SparseLoraState = {
      role: 'record',
      layer: m.key,
      activation: config.activation,
      k,
      up: factorsState(est.up),
      ...(est.gate ? { gate: factorsState(est.gate) } : {}),
      recall: r,
    };
    const link = new LayerLink(`MLP '${m.key}'`);
    out.set(input.site.name, recorder(input.site, link, est, k, saved));
    const consumeState: SparseLoraState = { role: 'consume', layer: m.key };
    out.set(m.act.site.name, consumerSparsifier(m.act.site, link, () => consumeState));
    for (const o of m.others) out.set(o.site.name, passThrough(o.site.name, { role: 'pass', layer: m.key } satisfies SparseLoraState));
  }
  return samples.map((s) => out.get(s.site.name)!);
}

function restore(config: SparseLoraConfig, site: Site, state: unknown): SiteSparsifier {
  const st = state as SparseLoraState | null;
  if (typeof st !== 'object' || st === null || !['record', 'consume', 'pass'].includes(st.role) || typeof st.layer !== 'string') {
    throw new ArgumentError(`sparselora-svd: restore ${site.name}: not a sparselora-svd state`);
  }
  if (st.layer !== mlpPrefix(site)) throw new ArgumentError(`sparselora-svd: restore ${site.name}: the state belongs to MLP '${st.layer}'`);
  if (st.role === 'pass') return passThrough(site.name, st);
  const link = restoredLink(config, `mlp:${st.layer}`, `MLP '${st.layer}'`);
  if (st.role === 'consume') return consumerSparsifier(site, link, () => st);
  const est: SVDEstimator = { activation: st.activation, up: factorsFrom(st.up), ...(st.gate ? { gate: factorsFrom(st.gate) } : {}) };
  if (est.up.in !== site.features) throw new ArgumentError(`sparselora-svd: restore ${site.name}: factors take ${est.up.in} features, the site has ${site.features}`);
  return recorder(site, link, est, st.k, st);
}

export const sparseLoraSvdMethod: ActivationMethod<typeof sparseLoraConfigSchema> = {
  kind: 'activation',
  name: 'sparselora-svd',
  describe: "SparseLoRA's SVD sparsity estimator (Khaki et al. 2025): rank-r gate/up factors predict each token's top MLP channels before they are computed; every token of the chosen blocks is sparsified here (no dense output tokens or step schedule)",
  paper: 'Khaki et al. 2025, SparseLoRA: Accelerating LLM Fine-Tuning with Contextual Sparsity',
  differs: [
    'every token of the chosen blocks is sparsified: no dense output tokens and no dense early-step schedule',
    'the prediction zeroes the activation; the gate/up products are still computed in full unless the caller skips them',
  ],
  schema: sparseLoraConfigSchema,
  needs: ['weight'],
  acts: (config, site) => (config.blocks === undefined || config.blocks.includes(site.block)) && (site.role === 'mlp.act' || MLP_INPUT_ROLES.has(site.role)),
  calibrate,
  restore,
};
