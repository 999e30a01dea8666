// The coupled groups of a model: per block, the attention's Q/K/V (rows) and O (columns) with the query
// heads as units, and each MLP's up/gate (rows) and down (columns) with the hidden channels as units.
// Read from the linear layers' roles and the spec's head count, for any architecture that names its
// layers with these roles; adapter variants that select across coupled weights (a `coupled` init) get them.

import type { CoupledGroup, CoupledMember } from '@sparse/lora-variants';
import type { LinearInfo } from './types.js';

/** The longest dotted prefix the names share ('model.layers.0.self_attn.q_proj.weight', '…o_proj.weight' -> 'model.layers.0.self_attn'). */
function commonPrefix(names: readonly string[]): string {
  const parts = names.map((n) => n.split('.'));
  const out: string[] = [];
  for (let i = 0; parts.every((p) => i < p.length - 1 && p[i] === parts[0]![i]); i++) out.push(parts[0]![i]!);
  return out.join('.');
}

/** The attention group of one block, or undefined when its layers do not describe one (no O, no heads in the spec). */
function attentionGroup(layers: readonly LinearInfo[], heads: number, rotary: boolean): CoupledGroup | undefined {
  const by = (role: string) => layers.find((l) => l.role === role);
  const o = by('attn.out');
  if (o === undefined || o.in % heads !== 0) return undefined;
  const hd = o.in / heads;
  const members: CoupledMember[] = [];
  const qkv = by('attn.qkv');
  if (qkv !== undefined) {
    // [q | k | v] rows: q has heads·hd, k and v kvHeads·hd each
    const kvRows = (qkv.out - heads * hd) / 2;
    if (!Number.isInteger(kvRows) || kvRows <= 0 || kvRows % hd !== 0 || heads % (kvRows / hd) !== 0) return undefined;
    const share = heads / (kvRows / hd);
    members.push({ name: qkv.name, axis: 'row', role: 'qkv', spans: [{ offset: 0, size: hd, share: 1 }, { offset: heads * hd, size: hd, share }, { offset: heads * hd + kvRows, size: hd, share }] });
  } else {
    const q = by('attn.q');
    if (q !== undefined) members.push({ name: q.name, axis: 'row', role: 'q', spans: [{ offset: 0, size: hd, share: 1 }] });
    for (const [role, l] of [['k', by('attn.k')], ['v', by('attn.v')]] as const) {
      if (l === undefined) continue;
      const kv = l.out / hd;
      if (!Number.isInteger(kv) || heads % kv !== 0) return undefined;
      members.push({ name: l.name, axis: 'row', role, spans: [{ offset: 0, size: hd, share: heads / kv }] });
    }
  }
  members.push({ name: o.name, axis: 'column', role: 'o', spans: [{ offset: 0, size: hd, share: 1 }] });
  return { name: commonPrefix(members.map((m) => m.name)), kind: 'attention', units: heads, members, ...(rotary ? { rotary } : {}) };
}

/** The MLP group of a dense MLP or one expert: up and gate by rows, down by columns, one unit per hidden channel. */
function mlpGroup(layers: readonly LinearInfo[]): CoupledGroup | undefined {
  const down = layers.find((l) => l.role.endsWith('.down'));
  if (down === undefined) return undefined;
  const rows = layers.filter((l) => (l.role.endsWith('.up') || l.role.endsWith('.gate')) && l.out === down.in);
  const members: CoupledMember[] = [
    ...rows.map((l): CoupledMember => ({ name: l.name, axis: 'row', role: l.role.endsWith('.up') ? 'up' : 'gate', spans: [{ offset: 0, size: 1, share: 1 }] })),
    { name: down.name, axis: 'column', role: 'down', spans: [{ offset: 0, size: 1, share: 1 }] },
  ];
  return { name: commonPrefix(members.map((m) => m.name)), kind: 'mlp', units: down.in, members };
}

/** Every coupled group of a model with these linear layers: per block its attention, then its MLP (or each expert's); members say their role (q, k, v or a fused qkv, o; up, gate, down). */
export function coupledGroups(spec: Readonly<Record<string, unknown>>, linears: readonly LinearInfo[]): CoupledGroup[] {
  const heads = typeof spec.heads === 'number' && Number.isInteger(spec.heads) && spec.heads > 0 ? spec.heads : undefined;
  // a rotary position embedding (its base frequency in the spec) turns Q and K between projection and product
  const rotary = typeof spec.ropeTheta === 'number';
  const blocks = new Map<number, LinearInfo[]>();
  for (const l of linears) blocks.set(l.block, [...(blocks.get(l.block) ?? []), l]);
  const out: CoupledGroup[] = [];
  for (const layers of blocks.values()) {
    const attn = heads === undefined ? undefined : attentionGroup(layers.filter((l) => l.role.startsWith('attn.')), heads, rotary);
    if (attn) out.push(attn);
    const mlp = layers.filter((l) => /^(mlp|moe\.expert)\.(up|gate|down)$/.test(l.role));
    const experts = new Map<number | undefined, LinearInfo[]>();
    for (const l of mlp) experts.set(l.expert, [...(experts.get(l.expert) ?? []), l]);
    for (const ls of experts.values()) {
      const g = mlpGroup(ls);
      if (g) out.push(g);
    }
  }
  return out;
}
