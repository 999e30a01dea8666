// The coupled groups are checked against what the models compute, not against their own layout
// description: for each group, an edit of one member's channels of a unit and an edit of another member's
// channels of the same unit have the same effect on the logits (or none at all), which holds only if the
// spans name the channels the forward pass really couples.
import { unitChannels } from '@sparse/lora-variants';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { coupledGroups } from './coupling.js';
import { createModel, defaultSpec } from './index.js';
import type { CoupledGroup, CoupledMember } from '@sparse/lora-variants';
import type { LanguageModel, ModelSpec } from './types.js';

beforeAll(async () => {
  await chooseBackend();
});

const IDS = [[1, 4, 2, 7, 3, 5, 6, 0]];

function logits(model: LanguageModel): Float32Array {
  return tf.tidy(() => Float32Array.from(model.logits2d(tf.tensor2d(IDS, [1, IDS[0]!.length], 'int32')).dataSync() as Float32Array));
}

/** Runs `edit` on copies of the named weights, returns the logits, and puts the weights back. */
function withEdits(model: LanguageModel, edits: Record<string, (w: Float32Array, shape: number[]) => void>): Float32Array {
  const saved = new Map<string, Float32Array>();
  for (const [n, edit] of Object.entries(edits)) {
    const p = model.params[n]!;
    const w = Float32Array.from(p.dataSync() as Float32Array);
    saved.set(n, Float32Array.from(w));
    edit(w, p.shape);
    p.assign(tf.tensor(w, p.shape));
  }
  try {
    return logits(model);
  } finally {
    for (const [n, w] of saved) model.params[n]!.assign(tf.tensor(w, model.params[n]!.shape));
  }
}

/** Multiplies the channels of `units` on a member (rows or columns) by `c`, span by span (`span`: only that one). */
function scale(m: CoupledMember, units: number[], c: number, span?: number) {
  return (w: Float32Array, [out, inp]: number[]) => {
    const spans = span === undefined ? m.spans : [m.spans[span]!];
    const ch = unitChannels({ ...m, spans }, units, m.axis === 'row' ? out! : inp!);
    for (const q of ch) {
      if (m.axis === 'row') for (let j = 0; j < inp!; j++) w[q * inp! + j]! *= c;
      else for (let i = 0; i < out!; i++) w[i * inp! + q]! *= c;
    }
  };
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!)), 0);

/** Query heads that share head h's key/value head (all of them under MHA: just h). */
function sharing(m: CoupledMember, h: number, units: number): number[] {
  const s = m.spans.at(-1)!.share;
  return Array.from({ length: units }, (_, u) => u).filter((u) => Math.floor(u / s) === Math.floor(h / s));
}

function checkModel(spec: ModelSpec): CoupledGroup[] {
  const model = createModel(spec, { seed: 5 });
  try {
    const groups = coupledGroups(model.spec, model.linears());
    const base = logits(model);
    for (const g of groups) {
      const rowMembers = g.members.filter((m) => m.axis === 'row');
      const col = g.members.find((m) => m.axis === 'column')!;
      for (let u = 0; u < g.units; u += Math.max(1, Math.floor(g.units / 3))) {
        if (g.kind === 'attention') {
          // zeroing V's rows of u's KV head == zeroing O's columns of every query head reading it
          const v = rowMembers.at(-1)!;
          const vSpan = v.spans.length === 3 ? 2 : undefined; // a fused QKV: its V part
          const group = sharing(v, u, g.units);
          const viaV = withEdits(model, { [v.name]: scale(v, [u], 0, vSpan) });
          const viaO = withEdits(model, { [col.name]: scale(col, group, 0) });
          expect(maxDiff(viaV, base), `${g.name} head ${u} matters`).toBeGreaterThan(1e-6);
          expect(maxDiff(viaV, viaO), `${g.name} head ${u}: V rows vs O columns`).toBeLessThan(1e-5);
          // Q of those heads ×3 and their K ÷3 leave every score, so the logits, unchanged
          const q = rowMembers[0]!;
          const k = rowMembers.length === 1 ? q : rowMembers[1]!;
          const edits = q === k ? { [q.name]: (w: Float32Array, s: number[]) => (scale(q, group, 3, 0)(w, s), scale(q, [u], 1 / 3, 1)(w, s)) } : { [q.name]: scale(q, group, 3), [k.name]: scale(k, [u], 1 / 3) };
          expect(maxDiff(withEdits(model, edits), base), `${g.name} head ${u}: Q·K`).toBeLessThan(1e-4);
          // …while scaling Q alone changes them
          expect(maxDiff(withEdits(model, { [q.name]: scale(q, group, 3, 0) }), base)).toBeGreaterThan(1e-5);
        } else {
          // zeroing every up/gate row of channel u == zeroing down's column u
          const viaRows = withEdits(model, { [rowMembers[rowMembers.length - 1]!.name]: scale(rowMembers[rowMembers.length - 1]!, [u], 0) });
          const viaCol = withEdits(model, { [col.name]: scale(col, [u], 0) });
          expect(maxDiff(viaCol, base), `${g.name} channel ${u} matters`).toBeGreaterThan(1e-7);
          expect(maxDiff(viaRows, viaCol), `${g.name} channel ${u}: up row vs down column`).toBeLessThan(1e-5);
        }
      }
    }
    return groups;
  } finally {
    model.dispose();
  }
}

describe('coupledGroups', () => {
  it('gpt (fused QKV, plain MLP): one attention and one MLP group per block, coupled as the forward pass couples them', () => {
    const groups = checkModel({ ...defaultSpec('gpt', 12), d: 16, heads: 4, layers: 2, ctx: 8 });
    expect(groups.map((g) => [g.name, g.kind, g.units, g.members.map((m) => `${m.name}:${m.axis}`)])).toEqual([
      ['h.0.attn', 'attention', 4, ['h.0.attn.c_attn.weight:row', 'h.0.attn.c_proj.weight:column']],
      ['h.0.mlp', 'mlp', 64, ['h.0.mlp.c_fc.weight:row', 'h.0.mlp.c_proj.weight:column']],
      ['h.1.attn', 'attention', 4, ['h.1.attn.c_attn.weight:row', 'h.1.attn.c_proj.weight:column']],
      ['h.1.mlp', 'mlp', 64, ['h.1.mlp.c_fc.weight:row', 'h.1.mlp.c_proj.weight:column']],
    ]);
    expect(groups.slice(0, 2).map((g) => g.members.map((m) => m.role))).toEqual([['qkv', 'o'], ['up', 'down']]);
    expect(groups[0]!.rotary).toBeUndefined();
  });

  it('llama (grouped-query attention, gated MLP, rope): K/V heads shared by two query heads each', () => {
    const groups = checkModel({ ...defaultSpec('llama', 12), d: 16, heads: 4, kvHeads: 2, layers: 1, mlpHidden: 24, ctx: 8 });
    expect(groups.map((g) => [g.name, g.kind, g.units, g.members.map((m) => m.name.split('.').at(-2))])).toEqual([
      ['model.layers.0.self_attn', 'attention', 4, ['q_proj', 'k_proj', 'v_proj', 'o_proj']],
      ['model.layers.0.mlp', 'mlp', 24, ['gate_proj', 'up_proj', 'down_proj']],
    ]);
    expect(groups.map((g) => g.members.map((m) => m.role))).toEqual([['q', 'k', 'v', 'o'], ['gate', 'up', 'down']]);
    expect(groups[0]!.rotary).toBe(true);
    expect(groups[0]!.members[1]!.spans).toEqual([{ offset: 0, size: 4, share: 2 }]);
  });

  it('mixture of experts: one MLP group per expert; a spec without heads gives no attention group', () => {
    const spec = { ...defaultSpec('llama', 12), d: 16, heads: 4, kvHeads: 4, layers: 1, mlpHidden: 8, ctx: 8, moe: { experts: 2, topK: 1 } };
    const model = createModel(spec, { seed: 1 });
    const groups = coupledGroups(model.spec, model.linears());
    expect(groups.map((g) => g.name)).toEqual(['model.layers.0.self_attn', 'model.layers.0.mlp.experts.0', 'model.layers.0.mlp.experts.1']);
    expect(coupledGroups({}, model.linears()).map((g) => g.kind)).toEqual(['mlp', 'mlp']);
    model.dispose();
  });
});
