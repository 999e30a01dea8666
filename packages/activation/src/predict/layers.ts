// Groups calibration samples into the layers a predictor works on: an MLP (its input site — the gate's
// for a gated MLP, the up projection's for a plain one — and its activation site 'mlp.act'), or an
// attention (its q/qkv input site and the input site of its output projection 'attn.out').

import { ArgumentError, ShapeError } from '@sparse/tensor';
import type { Site, SiteSample, SiteSparsifier } from '../types.js';

/** The roles whose input is an MLP's input h. */
export const MLP_INPUT_ROLES: ReadonlySet<string> = new Set(['mlp.gate', 'mlp.up']);
/** The roles whose input is an attention's input (the block's normalized hidden state). */
export const ATTN_INPUT_ROLES: ReadonlySet<string> = new Set(['attn.qkv', 'attn.q']);

/** The MLP prefix of a site name: 'h.0.mlp.act' -> 'h.0.mlp.', 'h.0.mlp.c_fc.weight' -> 'h.0.mlp.'. */
export function mlpPrefix(site: Site): string {
  const base = site.name.endsWith('.weight') ? site.name.slice(0, -'.weight'.length) : site.name;
  const i = base.lastIndexOf('.');
  return base.slice(0, i + 1);
}

export interface MlpLayer {
  key: string;
  act: SiteSample;
  gate?: SiteSample;
  up?: SiteSample;
  /** Linear-input samples of the layer that do not record (the up site of a gated MLP). */
  others: SiteSample[];
}

export interface AttnLayer {
  key: string;
  input: SiteSample;
  out: SiteSample;
}

/** The MLP and attention layers among the samples; every sample belongs to exactly one. */
export function groupLayers(where: string, samples: readonly SiteSample[]): { mlps: MlpLayer[]; attns: AttnLayer[] } {
  const mlps = new Map<string, Partial<MlpLayer> & { others: SiteSample[] }>();
  const attns = new Map<number, Partial<AttnLayer>>();
  for (const s of samples) {
    const { site } = s;
    if (s.x.length !== s.tokens * site.features) throw new ShapeError(`${where}: sample of ${site.name} has ${s.x.length} values, expected ${s.tokens} x ${site.features}`);
    if (site.role === 'mlp.act' || MLP_INPUT_ROLES.has(site.role)) {
      const key = mlpPrefix(site);
      const m = mlps.get(key) ?? { key, others: [] };
      mlps.set(key, m);
      const slot = site.role === 'mlp.act' ? 'act' : site.role === 'mlp.gate' ? 'gate' : 'up';
      if (m[slot] !== undefined) throw new ArgumentError(`${where}: two samples for the ${slot} of MLP '${key}' (${m[slot].site.name}, ${site.name})`);
      m[slot] = s;
    } else if (ATTN_INPUT_ROLES.has(site.role) || site.role === 'attn.out') {
      const a = attns.get(site.block) ?? { key: `attn.${site.block}` };
      attns.set(site.block, a);
      const slot = site.role === 'attn.out' ? 'out' : 'input';
      if (a[slot] !== undefined) throw new ArgumentError(`${where}: two ${slot === 'out' ? 'attn.out' : 'attention input'} samples in block ${site.block} (${a[slot].site.name}, ${site.name})`);
      a[slot] = s;
    } else {
      throw new ArgumentError(`${where}: cannot use site ${site.name} (role '${site.role}')`);
    }
  }
  const outM: MlpLayer[] = [];
  for (const m of mlps.values()) {
    if (m.act === undefined) throw new ArgumentError(`${where}: MLP '${m.key}' has input samples but no 'mlp.act' sample (calibrate needs both, over the same tokens)`);
    if (m.gate === undefined && m.up === undefined) throw new ArgumentError(`${where}: MLP '${m.key}' has an 'mlp.act' sample but no mlp.gate/mlp.up input sample (expert MLPs of a mixture are not supported)`);
    for (const s of [m.gate, m.up]) {
      if (s && s.tokens !== m.act.tokens) throw new ShapeError(`${where}: ${s.site.name} has ${s.tokens} tokens but ${m.act.site.name} has ${m.act.tokens}; samples must cover the same tokens`);
    }
    if (m.gate !== undefined && m.up !== undefined) m.others.push(m.up);
    outM.push({ key: m.key!, act: m.act, ...(m.gate ? { gate: m.gate } : {}), ...(m.up ? { up: m.up } : {}), others: m.others });
  }
  const outA: AttnLayer[] = [];
  for (const [block, a] of attns) {
    if (a.input === undefined || a.out === undefined) throw new ArgumentError(`${where}: block ${block} needs both an attention input sample (attn.qkv or attn.q) and an attn.out sample`);
    if (a.input.tokens !== a.out.tokens) throw new ShapeError(`${where}: ${a.input.site.name} has ${a.input.tokens} tokens but ${a.out.site.name} has ${a.out.tokens}; samples must cover the same tokens`);
    outA.push({ key: a.key!, input: a.input, out: a.out });
  }
  return { mlps: outM, attns: outA };
}

/** A sparsifier that leaves its site alone (the up site of a gated MLP, whose input the gate site already saw). */
export function passThrough(site: string, state: unknown): SiteSparsifier {
  return {
    site,
    apply: (x, tokens) => {
      if (x.length % Math.max(1, tokens) !== 0) throw new ShapeError(`${site}: ${x.length} values are not ${tokens} equal rows`);
      return x.length;
    },
    state: () => state,
  };
}

/** Checks x is `tokens` rows of the site's features. */
export function checkRows(site: Site, x: Float32Array, tokens: number): void {
  if (!Number.isInteger(tokens) || tokens < 0 || x.length !== tokens * site.features) {
    throw new ShapeError(`${site.name}: x has ${x.length} values, expected ${tokens} tokens x ${site.features} features`);
  }
}
