// prune method 'clover': CLOVER's pruning of attention (Meng et al., "CLOVER: Constrained Learning with
// Orthonormal Vectors for Eliminating Redundancy"). Per block and head, Q with K and V with O are
// absorbed into their products, decomposed by SVD and truncated to `rank` singular values per head (or
// the fewest reaching `energy`); Q, K, V and O are rewritten as the orthogonal factors, so each head keeps
// that many channels and the rest become zero rows / columns, held by the run's masks from here on.
// Where a pair cannot be absorbed (Q/K under RoPE, K/V heads shared by several query heads) it is left
// as it is, and the stage says so. differs: the paper removes the pruned channels (a smaller head
// dimension); here they stay as zeros in the same shapes (masked), so every later stage and export runs
// on the unchanged architecture.

import { cloverPrune, cloverPruneConfigSchema, type CLOVERPruneConfig } from '@sparse/lora-variants';
import { maskFromTensor } from '@sparse/masks';
import type { StageOf } from '../../recipe/schema.js';
import { coupledGroups } from '../../model/coupling.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import type { TrainerMethod } from '../types.js';

export const cloverPruneMethod: TrainerMethod<'prune'> = {
  kind: 'prune',
  name: 'clover',
  describe: "CLOVER: per head, W_Qᵀ W_K and W_Vᵀ W_Oᵀ truncated to their largest singular values (rank or energy), Q/K/V/O rewritten as the orthogonal factors; differs: pruned channels stay as masked zeros, the head dimension is unchanged",
  paper: 'Meng et al. 2024, CLOVER: Constrained Learning with Orthonormal Vectors for Eliminating Redundancy',
  differs: [
    'the pruned channels stay as masked zeros: the head dimension is unchanged (the paper removes them)',
    'pairs that RoPE or shared K/V heads keep from being absorbed are left as they are, with a note',
  ],
  schema: cloverPruneConfigSchema,
  from: '@sparse/lora-variants',
  run: runCloverPrune,
};

async function runCloverPrune(args: StageArgs<StageOf<'prune'>>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  const cfg = stage.config as CLOVERPruneConfig;
  const target = cfg.rank !== undefined ? { rank: cfg.rank } : { energy: cfg.energy! };
  const linears = ctx.linears();
  const targeted = new Set(selectLinears(linears, stage.targets, `stages[${index}]`).map((l) => l.name));
  const groups = coupledGroups(ctx.model.spec, linears).filter((g) => g.kind === 'attention' && g.members.every((m) => targeted.has(m.name)));
  if (groups.length === 0) throw new Error(`${label}: clover: no attention (Q, K, V and O) among the targeted layers`);
  const biasOf = new Map(linears.filter((l) => l.bias !== undefined).map((l) => [l.name, l.bias!]));
  const kept: { qk: number[]; vo: number[] } = { qk: [], vo: [] };
  const skipped = new Set<string>();
  let zeroed = 0;
  let total = 0;
  for (const g of groups) {
    for (const m of g.members) {
      if (ctx.masks.has(m.name)) throw new Error(`${label}: clover rewrites '${m.name}' as dense orthogonal factors, which would undo its sparsity mask; run the clover prune stage before other pruning`);
    }
    const weights = Object.fromEntries(g.members.map((m) => [m.name, coreOf(ctx.model.params[m.name]!)]));
    const biases = Object.fromEntries(g.members.filter((m) => biasOf.has(m.name)).map((m) => [m.name, coreOf(ctx.model.params[biasOf.get(m.name)!]!)]));
    const r = cloverPrune(g, weights, target, biases);
    for (const [n, w] of Object.entries(r.weights)) {
      assignValues(ctx.model.params[n]!, w.data as Float32Array);
      const mask = maskFromTensor(w);
      ctx.setMask(n, mask);
      total += w.data.length;
      zeroed += (w.data as Float32Array).reduce((z, x) => z + (x === 0 ? 1 : 0), 0);
    }
    for (const [n, b] of Object.entries(r.biases)) assignValues(ctx.model.params[biasOf.get(n)!]!, b.data as Float32Array);
    kept.qk.push(...(r.kept.qk ?? []));
    kept.vo.push(...(r.kept.vo ?? []));
    for (const [pair, why] of Object.entries(r.skipped)) skipped.add(`${pair.toUpperCase()} not absorbed: ${why}`);
  }
  ctx.pattern = undefined;
  const mean = (xs: number[]) => (xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2) : '-');
  const line = `clover ${cfg.rank !== undefined ? `rank ${cfg.rank}` : `energy ${cfg.energy}`} over ${groups.length} attention blocks: mean kept singular values per head QK ${mean(kept.qk)}, VO ${mean(kept.vo)}; ${((zeroed / Math.max(1, total)) * 100).toFixed(1)}% of the rewritten weights zero`;
  ctx.log.say(`${label}: ${line}${skipped.size ? ` (${[...skipped].join('; ')})` : ''}`);
  for (const s of skipped) ctx.report.notes.push(`${label}: clover: ${s}`);
  return { summary: line };
}
