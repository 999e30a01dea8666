// prune methods from @sparse/pruners: one-shot pruning with any registered per-layer pruner, layer by layer. Calibration inputs are
// captured from the model itself; with `sequential` each group of layers (q/k/v, then the attention
// output, then the MLP up, then down, block after block) sees the outputs of the layers already
// pruned before it, as in the SparseGPT and Wanda papers. Only one group's statistics are held.

import { count } from '@sparse/masks';
import { applyColumnPermutation, applyRowPermutation, searchChannelPermutation } from '@sparse/nm';
import { ColumnNormAccumulator, HessianAccumulator, patternOf, runDefinition, type LayerStats, type PrunerDefinition } from '@sparse/pruners';
import type { LinearInfo } from '../../model/types.js';
import type { StageOf } from '../../recipe/schema.js';
import type { RunContext } from '../../run/context.js';
import { calibrationBatches, capture, type Accumulators } from '../../stages/calibration.js';
import { assignValues, coreOf, selectLinears, type StageArgs, type StageOutcome } from '../../stages/common.js';
import type { TrainerMethod } from '../types.js';

function statsOf(acc: Accumulators): LayerStats {
  return { ...(acc.columns?.stats() ?? {}), ...(acc.hessian?.stats() ?? {}) };
}

/**
 * Before N:M pruning of an MLP down projection: permute its input channels to raise the kept
 * magnitude, and permute the rows (outputs) of the layers that produce those channels the same way,
 * so the network computes the same function. Returns the kept-magnitude gain per layer.
 */
function permuteDownProjections(
  ctx: RunContext,
  layers: LinearInfo[],
  n: number,
  m: number,
  budget: StageOf<'prune'>['permuteBudget'],
  label: string,
): { name: string; before: number; after: number; swaps: number; evaluations: number; stopped: string; ms: number }[] {
  const all = ctx.linears();
  const out: { name: string; before: number; after: number; swaps: number; evaluations: number; stopped: string; ms: number }[] = [];
  for (const down of layers.filter((l) => l.role === 'mlp.down' && l.expert === undefined)) {
    const producers = all.filter((l) => l.block === down.block && (l.role === 'mlp.up' || l.role === 'mlp.gate') && l.expert === undefined);
    if (producers.length === 0 || down.in % m !== 0) continue;
    const w = coreOf(ctx.model.params[down.name]!);
    const t0 = performance.now();
    const found = searchChannelPermutation(w, {
      n,
      m,
      ...(budget.maxEvaluations !== undefined ? { maxEvaluations: budget.maxEvaluations } : {}),
      ...(budget.maxSwaps !== undefined ? { maxSwaps: budget.maxSwaps } : {}),
      ...(budget.timeMs !== undefined ? { timeBudgetMs: budget.timeMs } : {}),
      progressIntervalMs: 5000,
      onProgress: (p) => {
        if (p.stopped !== undefined) return;
        ctx.log.say(`${label}: permuting ${down.name}: ${p.evaluations}/${p.maxEvaluations} swaps evaluated, ${p.swaps} applied, kept magnitude ${p.keptBefore.toFixed(2)} -> ${p.kept.toFixed(2)} (${(p.elapsedMs / 1000).toFixed(1)} s)`);
      },
    });
    const ms = performance.now() - t0;
    if (found.keptAfter <= found.keptBefore) continue;
    const p = found.permutation;
    assignValues(ctx.model.params[down.name]!, applyColumnPermutation(w, p).data as Float32Array);
    for (const prod of producers) {
      const pw = ctx.model.params[prod.name]!;
      assignValues(pw, applyRowPermutation(coreOf(pw), p).data as Float32Array);
      if (prod.bias) {
        const bv = ctx.model.params[prod.bias]!;
        const b = bv.dataSync() as Float32Array;
        assignValues(bv, Float32Array.from(p, (src) => b[src]!));
      }
    }
    out.push({ name: down.name, before: found.keptBefore, after: found.keptAfter, swaps: found.swaps, evaluations: found.evaluations, stopped: found.stopped, ms });
  }
  return out;
}

const wrapped = new WeakMap<PrunerDefinition, TrainerMethod<'prune'>>();

/** The prune method of a registered pruner (one entry per definition, so lookups return the same object). */
export function layerwisePruneMethod(def: PrunerDefinition): TrainerMethod<'prune'> {
  let m = wrapped.get(def);
  if (m === undefined) {
    m = { kind: 'prune', name: def.name, describe: def.describe, paper: def.paper, differs: def.differs, schema: def.schema, from: '@sparse/pruners', run: (args) => pruneLayerwise(def, args) };
    wrapped.set(def, m);
  }
  return m;
}

async function pruneLayerwise(def: PrunerDefinition, args: StageArgs<StageOf<'prune'>>): Promise<StageOutcome> {
  const { ctx, stage, index, label } = args;
  if (ctx.adapter) throw new Error(`${label}: an adapter is attached and not merged; merge it before pruning`);
  const layers = selectLinears(ctx.linears(), stage.targets, `stages[${index}]`);
  const pattern = patternOf(stage.config as { sparsity?: number; n?: number; m?: number });
  const t0 = performance.now();
  if (stage.permute) {
    if (pattern.kind !== 'nm') throw new Error(`stages[${index}].permute: channel permutation is for N:M patterns; the config asks for ${pattern.sparsity} unstructured`);
    for (const g of permuteDownProjections(ctx, layers, pattern.n, pattern.m, stage.permuteBudget, label)) {
      ctx.log.say(
        `${label}: permuted ${g.name}: kept magnitude ${g.before.toFixed(2)} -> ${g.after.toFixed(2)} (${g.swaps} swaps of ${g.evaluations} evaluated, ${g.stopped === 'converged' ? 'converged' : `stopped by ${g.stopped}`}, ${(g.ms / 1000).toFixed(1)} s)`,
      );
      ctx.log.event({ event: 'permutation', stage: index, layer: g.name, keptBefore: g.before, keptAfter: g.after, swaps: g.swaps, evaluations: g.evaluations, stopped: g.stopped });
    }
  }
  const needs = new Set(def.calibration);
  const batches = needs.size > 0 ? calibrationBatches(ctx, index, stage.data) : [];
  const makeAcc = (l: LinearInfo): Accumulators => ({
    ...(needs.has('columns') ? { columns: new ColumnNormAccumulator(l.in, { name: l.name }) } : {}),
    ...(needs.has('hessian') ? { hessian: new HessianAccumulator(l.in, { name: l.name }) } : {}),
  });
  const pruneOne = (l: LinearInfo, acc: Accumulators | undefined) => {
    const v = ctx.model.params[l.name]!;
    // every method starts from the current weights (DSnoT from its `initial` pruner's mask): a weight an
    // earlier stage pruned is already zero here, so there is nothing for DSnoT to regrow or SparseGPT to compensate
    const r = runDefinition(def, { name: l.name, weight: coreOf(v), stats: acc ? statsOf(acc) : undefined, config: stage.config as never });
    assignValues(v, r.weight.data);
    ctx.setMask(l.name, r.mask);
    const kept = count(r.mask);
    // reconstructionError: ||(W - W')X^T||^2 / tokens on this layer's calibration inputs (undampened); SparseGPT
    // adds the sum it minimized against its dampened Hessian, DSnoT the error of the mask it started from
    const e = r.error;
    ctx.log.event({
      event: 'prune',
      stage: index,
      layer: l.name,
      method: stage.method,
      sparsity: 1 - kept / (l.out * l.in),
      reconstructionError: e?.total,
      ...(e?.dampened !== undefined ? { reconstructionErrorDampened: e.dampened } : {}),
      ...(e?.initial !== undefined ? { reconstructionErrorInitial: e.initial } : {}),
    });
  };
  // groups in evaluation order
  const keys = [...new Set(layers.map((l) => `${l.block}:${l.group}`))];
  if (needs.size === 0) {
    for (const l of layers) pruneOne(l, undefined);
  } else if (stage.sequential) {
    for (const key of keys) {
      const group = layers.filter((l) => `${l.block}:${l.group}` === key);
      const wanted = new Map(group.map((l) => [l.name, makeAcc(l)]));
      capture(ctx, batches, wanted);
      for (const l of group) pruneOne(l, wanted.get(l.name));
    }
  } else {
    const wanted = new Map(layers.map((l) => [l.name, makeAcc(l)]));
    capture(ctx, batches, wanted);
    for (const l of layers) pruneOne(l, wanted.get(l.name));
  }
  ctx.pattern = pattern.kind === 'nm' ? { n: pattern.n, m: pattern.m } : undefined;
  const total = layers.reduce((s, l) => s + l.out * l.in, 0);
  const kept = layers.reduce((s, l) => s + count(ctx.masks.get(l.name)!), 0);
  const ms = performance.now() - t0;
  const desc = pattern.kind === 'nm' ? `${pattern.n}:${pattern.m}` : `${(pattern.sparsity * 100).toFixed(0)}% unstructured`;
  ctx.log.say(`${label}: ${stage.method} ${desc} on ${layers.length} layers (${stage.sequential && needs.size > 0 ? 'sequential' : 'one pass'}${batches.length ? `, ${batches.reduce((s, b) => s + b.b, 0)} calibration windows` : ''}): ${((1 - kept / total) * 100).toFixed(2)}% of their weights pruned in ${(ms / 1000).toFixed(1)} s`);
  return { summary: `${stage.method} ${desc}, ${((1 - kept / total) * 100).toFixed(2)}% pruned` };
}
