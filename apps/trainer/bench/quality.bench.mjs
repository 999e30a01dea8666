// `pnpm bench quality`: held-out perplexity of the trainer's default GPT after one-shot
// pruning (rows: dense, magnitude, Wanda, SparseGPT; columns: 50% unstructured, 2:4, 4:8, the shape
// of the Wanda paper's table), then recovery of the SparseGPT 2:4 model with LoRA, SPP, SQFT and SFT
// (same steps each) and whether each recovered export is still 2:4 (isNM of @sparse/nm on its weights).
// One pretraining: its exported dense model seeds every other run (model: { checkpoint }).
//
// Environment: SPARSE_BENCH_QUICK=1 shrinks steps and evaluation (a smoke test; figures meaningless).
import { printTable, writeResults } from '../../../tooling/bench/harness.mjs';
import { EVAL, MODEL, PRETRAIN, QUICK, exportedIsNM, linearNamesOf, log, ppl, pretrainOnce, pruneGrid, pruneStages, round, runRecipe, scratch, stageOf } from './common.mjs';

const RECOVERY_STEPS = QUICK ? 10 : 200;
const runs = scratch('quality');
const notes = [];

log(`pretraining ${JSON.stringify(MODEL)} for ${PRETRAIN.steps} steps (seed 0)`);
const pre = await pretrainOnce(runs);
notes.push(...pre.notes);
log(`dense held-out perplexity ${ppl(pre.summary, 'dense').toFixed(3)}; pretrain ${(pre.pretrainMs / 1000).toFixed(0)} s; ${pre.notes.at(-1)}`);
const { names: linears } = await linearNamesOf(pre.checkpoint);

// ---- one-shot grid ----
const grid = await pruneGrid(runs, pre);

// ---- recovery of SparseGPT 2:4 ----
// lr as in the shipped recipes: sqft-recovery/lora-finetune 0.005, spp-recovery and sft-finetune 0.01
const RECOVERY = [
  { label: 'lora (merged through the mask)', method: 'lora', config: { r: 8, alpha: 16 }, lr: 0.005 },
  { label: 'lora (densified merge)', method: 'lora', config: { r: 8, alpha: 16 }, lr: 0.005, densify: true },
  { label: 'sqft', method: 'sqft', config: { r: 8, alpha: 16 }, lr: 0.005 },
  { label: 'spp', method: 'spp', config: {}, lr: 0.01 },
  { label: 'sft', method: 'sft', config: { density: 0.05 }, lr: 0.01 },
];
const recovery = [];
for (const rec of RECOVERY) {
  const r = await runRecipe(runs, `recover-${rec.method}${rec.densify ? '-densify' : ''}`, { checkpoint: pre.checkpoint }, [
    ...pruneStages('sparsegpt', { n: 2, m: 4 }),
    { stage: 'evaluate', name: 'pruned' },
    { stage: 'adapt', name: 'recover', method: rec.method, config: rec.config, steps: RECOVERY_STEPS, lr: rec.lr, ...(rec.densify ? { densify: true } : {}) },
    { stage: 'evaluate', name: 'recovered' },
    { stage: 'export', formats: ['dense'] },
  ]);
  const nm = await exportedIsNM(r.dir, linears, 2, 4);
  const adapt = stageOf(r, 'recover');
  const trainable = Number(/(\d+) trainable/.exec(adapt.summary ?? '')?.[1] ?? NaN);
  const row = {
    recovery: rec.label,
    pruned: round(ppl(r, 'pruned')),
    recovered: round(ppl(r, 'recovered')),
    dense: round(grid.dense),
    trainable,
    steps: String(RECOVERY_STEPS),
    'still 2:4': nm.valid ? 'yes' : `NO (${nm.violations.length}/${linears.length} layers)`,
    's/step': round(adapt.ms / 1000 / Math.max(1, RECOVERY_STEPS), 3),
  };
  recovery.push({ ...row, config: rec.config, lr: rec.lr, summary: adapt.summary, violations: nm.violations });
  log(`${rec.label}: ${row.pruned} -> ${row.recovered} (dense ${row.dense}), still 2:4: ${row['still 2:4']}`);
}

console.log('\nHeld-out perplexity after one-shot pruning (rows: methods, columns: patterns; lower is better)');
printTable(grid.rows);
console.log(`\nRecovery of the SparseGPT 2:4 model (${RECOVERY_STEPS} steps each, batch 8, training data), 2:4 checked with isNM on the exported weights`);
printTable(recovery.map(({ config, lr, summary, violations, ...row }) => row));
notes.push(
  `model ${JSON.stringify(MODEL)}, seed 0, pretrain ${PRETRAIN.steps} steps lr ${PRETRAIN.lr}; evaluation: ${EVAL.windows} held-out windows of ${MODEL.ctx} tokens`,
  'calibration: 64 windows of the training data (calibrate stage), sequential pruning (the prune stage default)',
  "lora merged through the mask is the adapt stage's default merge (W + M ⊙ ΔW); the densified merge (densify: true) adds the full ΔW and drops the masks",
);
for (const n of notes) console.log(`note: ${n}`);
const file = writeResults('quality', { quick: QUICK, model: MODEL, pretrainSteps: PRETRAIN.steps, eval: EVAL, dense: grid.dense, grid: grid.rows, cells: grid.cells, recovery, notes });
log(`wrote ${file}`);
