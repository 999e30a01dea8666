// 'polar': Polar Sparsity's per-layer selection with linear routers. For attention, a probe from the
// block's attention input to each head's output norm picks the top heads per token, and the output
// projection's input site 'attn.out' (heads × head_dim features, heads side by side) zeroes the slices of
// the other heads, which skips them. For MLPs, a probe from the MLP input to |activation| picks the top
// neurons, and 'mlp.act' zeroes the rest. Probes are ridge least-squares fits on the calibration samples.

import { ArgumentError, ShapeError } from '@sparse/tensor';
import { z } from 'zod';
import type { ActivationMethod, Site, SiteSample, SiteSparsifier } from '../types.js';
import { ATTN_INPUT_ROLES, groupLayers, mlpPrefix, MLP_INPUT_ROLES, passThrough } from './layers.js';
import { LayerLink, restoredLink } from './link.js';
import { fitLinearProbe, headNorms, magnitudes, probeOutputs, type LinearProbe } from './probe.js';
import { keepCount, recall, selectionMask, topRows } from './select.js';
import { consumerSparsifier, expandSelection, recorderSparsifier } from './sparsifiers.js';

export const polarConfigSchema = z
  .strictObject({
    /** Head selection: `heads` of the attention (its 'attn.out' features are heads × head_dim), the fraction kept per token. */
    attention: z.strictObject({ heads: z.int().min(1), keep: z.number().gt(0).max(1).default(0.5) }).optional(),
    /** Neuron selection in the MLP activation: the fraction kept per token. */
    mlp: z.strictObject({ keep: z.number().gt(0).max(1).default(0.5) }).optional(),
    /** Ridge penalty of the probes' least-squares fit (times the token count). */
    l2: z.number().min(0).default(1e-3),
    /** Blocks where the routers act (default every block). */
    blocks: z.array(z.int().min(0)).optional(),
  })
  .refine((c) => c.attention !== undefined || c.mlp !== undefined, { message: 'polar needs attention and/or mlp selection' });

export type PolarConfig = z.output<typeof polarConfigSchema>;
export type PolarConfigInput = z.input<typeof polarConfigSchema>;

interface ProbeState {
  d: number;
  m: number;
  weights: number[];
}

/** What each site's sparsifier saves. */
export type PolarState =
  | { role: 'record'; layer: string; kind: 'attention' | 'mlp'; k: number; groupWidth: number; probe: ProbeState; recall: number }
  | { role: 'consume'; layer: string }
  | { role: 'pass'; layer: string };

const probeFrom = (s: ProbeState): LinearProbe => ({ d: s.d, m: s.m, weights: Float64Array.from(s.weights) });

function recorder(site: Site, link: LayerLink, probe: LinearProbe, k: number, groupWidth: number, saved: PolarState): SiteSparsifier {
  return recorderSparsifier(site, link, (x, tokens) => expandSelection(topRows(probeOutputs(probe, x, tokens), tokens, probe.m, k), groupWidth), () => saved);
}

function layerKey(site: Site): string {
  return ATTN_INPUT_ROLES.has(site.role) || site.role === 'attn.out' ? `attn.${site.block}` : mlpPrefix(site);
}

function fitLayer(config: PolarConfig, kind: 'attention' | 'mlp', input: SiteSample, target: Float64Array, m: number, keep: number, groupWidth: number, key: string): { probe: LinearProbe; state: PolarState } {
  const tokens = input.tokens;
  if (tokens === 0) throw new ArgumentError(`polar: no calibration tokens for ${input.site.name}`);
  const probe = fitLinearProbe(input.x, target, tokens, input.site.features, m, config.l2);
  const k = keepCount(keep, m);
  const r = recall(topRows(probeOutputs(probe, input.x, tokens), tokens, m, k), topRows(target, tokens, m, k));
  return { probe, state: { role: 'record', layer: key, kind, k, groupWidth, probe: { d: probe.d, m, weights: Array.from(probe.weights) }, recall: r } };
}

function calibrate(config: PolarConfig, samples: readonly SiteSample[]): SiteSparsifier[] {
  const { mlps, attns } = groupLayers('polar', samples);
  const out = new Map<string, SiteSparsifier>();
  for (const a of attns) {
    const att = config.attention!;
    const width = a.out.site.features;
    if (width % att.heads !== 0) throw new ShapeError(`polar: ${a.out.site.name} has ${width} features, not a multiple of heads = ${att.heads}`);
    const { probe, state } = fitLayer(config, 'attention', a.input, headNorms(a.out.x, a.out.tokens, att.heads), att.heads, att.keep, width / att.heads, a.key);
    const link = new LayerLink(`attention of block ${a.input.site.block}`);
    out.set(a.input.site.name, recorder(a.input.site, link, probe, (state as { k: number }).k, width / att.heads, state));
    const c: PolarState = { role: 'consume', layer: a.key };
    out.set(a.out.site.name, consumerSparsifier(a.out.site, link, () => c));
  }
  for (const m of mlps) {
    const input = (m.gate ?? m.up)!;
    const hidden = m.act.site.features;
    const { probe, state } = fitLayer(config, 'mlp', input, magnitudes(m.act.x), hidden, config.mlp!.keep, 1, m.key);
    const link = new LayerLink(`MLP '${m.key}'`);
    out.set(input.site.name, recorder(input.site, link, probe, (state as { k: number }).k, 1, state));
    const c: PolarState = { role: 'consume', layer: m.key };
    out.set(m.act.site.name, consumerSparsifier(m.act.site, link, () => c));
    for (const o of m.others) out.set(o.site.name, passThrough(o.site.name, { role: 'pass', layer: m.key } satisfies PolarState));
  }
  return samples.map((s) => out.get(s.site.name)!);
}

function restore(config: PolarConfig, site: Site, state: unknown): SiteSparsifier {
  const st = state as PolarState | null;
  if (typeof st !== 'object' || st === null || !['record', 'consume', 'pass'].includes(st.role) || typeof st.layer !== 'string') {
    throw new ArgumentError(`polar: restore ${site.name}: not a polar state`);
  }
  if (st.layer !== layerKey(site)) throw new ArgumentError(`polar: restore ${site.name}: the state belongs to layer '${st.layer}'`);
  if (st.role === 'pass') return passThrough(site.name, st);
  const link = restoredLink(config, `polar:${st.layer}`, st.layer.startsWith('attn.') ? `attention of block ${site.block}` : `MLP '${st.layer}'`);
  if (st.role === 'consume') return consumerSparsifier(site, link, () => st);
  const probe = probeFrom(st.probe);
  if (probe.d !== site.features || probe.weights.length !== (probe.d + 1) * probe.m) throw new ArgumentError(`polar: restore ${site.name}: the probe does not fit the site's ${site.features} features`);
  return recorder(site, link, probe, st.k, st.groupWidth, st);
}

export const polarMethod: ActivationMethod<typeof polarConfigSchema> = {
  kind: 'activation',
  name: 'polar',
  describe: 'Polar Sparsity (Shrestha et al. 2025): routers pick the top attention heads and MLP neurons per token from the layer input; here the routers are linear probes fitted by ridge least squares instead of trained networks',
  paper: 'Shrestha et al. 2025, Polar Sparsity: High Throughput Batched LLM Inferencing with Scalable Contextual Sparsity',
  differs: [
    'routers are linear probes fitted by ridge least squares on calibration samples, not trained router networks',
    'a per-token top set rather than a batch-level one',
  ],
  schema: polarConfigSchema,
  needs: [],
  acts: (config, site) =>
    (config.blocks === undefined || config.blocks.includes(site.block)) &&
    ((config.attention !== undefined && (ATTN_INPUT_ROLES.has(site.role) || site.role === 'attn.out')) ||
      (config.mlp !== undefined && (site.role === 'mlp.act' || MLP_INPUT_ROLES.has(site.role)))),
  calibrate,
  restore,
};
