// Activation sites of a model: every linear layer's input, and every MLP's activation (the activated
// gate of a gated MLP, the nonlinearity's output of a plain one). Activation sparsifiers act on sites;
// the tfjs forward (ForwardHooks.activation) and the decoder call them by these names.

import type { Site } from '@sparse/activation';
import type { LinearInfo } from './types.js';

const DOWN_ROLES = new Set(['mlp.down', 'moe.expert.down']);

/** The MLP activation site of the MLP whose down projection is `down` ('h.0.mlp.c_proj.weight' -> 'h.0.mlp.act'). */
export function mlpActSiteName(down: LinearInfo): string {
  const i = down.name.lastIndexOf('.', down.name.length - '.weight'.length - 1);
  return `${down.name.slice(0, i + 1)}act`;
}

/** The site of a linear layer's input. */
export function linearSite(info: LinearInfo): Site {
  return { name: info.name, kind: 'linear-input', block: info.block, role: info.role, features: info.in, out: info.out };
}

/** The MLP activation site feeding the down projection `down`. */
export function mlpActSite(down: LinearInfo): Site {
  return { name: mlpActSiteName(down), kind: 'mlp-activation', block: down.block, role: 'mlp.act', features: down.in };
}

/** Every site of a model with these linear layers, layer by layer, each MLP activation just before its down projection (a gated MLP evaluates it between its gate and up projections). */
export function modelSites(linears: readonly LinearInfo[]): Site[] {
  const out: Site[] = [];
  for (const l of linears) {
    if (DOWN_ROLES.has(l.role)) out.push(mlpActSite(l));
    out.push(linearSite(l));
  }
  return out;
}
