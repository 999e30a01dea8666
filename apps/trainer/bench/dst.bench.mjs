// `pnpm bench dst`: sparse training, side by side.
//
// 1. Quality at one step budget (the shipped recipes' 600 steps, the default GPT, from scratch) at 80% and
//    90% sparsity: dense, static random masks (ER and ERK), SET, RigL, SRigL and the exploration DST (ERK
//    budgets), GMP (dense to sparse, cubic), IMP with rewinding (2 rounds, rate 1 − √(1 − s) so the last
//    ticket is at s), and movement pruning (hard, fine-tuning the pretrained dense model for the same
//    steps). Held-out perplexity per row. The papers report RigL ≤ SET ≤ static in perplexity at equal
//    steps; when the measured order differs at either sparsity, two more seeds run and the table reports
//    the mean over three.
// 2. Speed of one training step (forward + backward + Adam) of an MLP block, d 1024 / hidden 4096, 512
//    tokens: the native kernels' dense step against their sparse step (kernels/cpu/bench/sparse-step.mjs),
//    and the trainer's own tfjs step, dense (matMul) against the packed sparse path, at d 1024 / 4096 and
//    d 256 / 1024. Goals: sparse step ≥ 2.5x faster than dense at 90%, ≥ 1.5x at 80% (native kernels).
// 3. The threshold the trainer's `path: auto` uses, from the trainer-level measurements: the largest
//    measured density at which the packed step is at least 1.1x faster than the dense one at the large
//    shape, and the smallest measured layer at which it is at some density; stored for this CPU in the sparse-path file (SPARSE_PATH_FILE, default
//    ~/.cache/sparse/sparse-path.json) and in bench-results/dst.json.
//
// Environment: SPARSE_BENCH_QUICK=1 shrinks everything (a smoke test; figures meaningless);
// SPARSE_BENCH_DST_PARTS=quality,speed picks parts.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { chooseBackend, cpuModel, csrPattern, NamedAdam, sparseLinearProduct, sparsePathFile } from '@sparse/trainer';
import { kernelBackend, Random } from '@sparse/tensor';
import { maskFromBooleans } from '@sparse/masks';
import { compare, printTable, writeResults } from '../../../tooling/bench/harness.mjs';
import { MODEL, PRETRAIN, QUICK, cpuInfo, log, ppl, pretrainOnce, runRecipe, scratch } from './common.mjs';

const parts = new Set((process.env.SPARSE_BENCH_DST_PARTS ?? 'quality,speed').split(','));
const STEPS = QUICK ? 20 : 600;
const SPARSITIES = [0.8, 0.9];
const results = { cpu: cpuInfo(), notes: [] };

await chooseBackend();
log(`CPU ${results.cpu.model} (avx512f ${results.cpu.avx512f}, avx2 ${results.cpu.avx2}); sparse kernels: ${kernelBackend('linearCSR')}`);

// ---------------------------------------------------------------- quality
const ROWS = (s) => {
  const erk = { sparsity: s, budget: 'erk' };
  const rate = 1 - Math.sqrt(1 - s);
  return [
    { label: 'static ER', method: 'static', config: { sparsity: s, budget: 'er' } },
    { label: 'static ERK', method: 'static', config: erk },
    { label: 'SET', method: 'set', config: { ...erk, every: 50 } },
    { label: 'RigL', method: 'rigl', config: { ...erk, every: 50 } },
    { label: 'SRigL', method: 'srigl', config: { ...erk, every: 50 } },
    { label: 'exploration DST', method: 'exploration', config: { ...erk, every: 50 } },
    { label: 'GMP', method: 'gmp', config: { sparsity: s, budget: 'erk' } },
    { label: 'IMP (2 rounds, rewinding)', method: 'imp', config: { rounds: 2, rate, budget: 'global' } },
    { label: 'movement (from dense)', method: 'movement', config: { variant: 'hard', sparsity: s }, fromDense: true },
  ];
};

async function qualityRuns(seed, pretrained, runs) {
  const extra = { seed };
  const one = async (label, model, stages) => {
    const r = await runRecipe(runs, label, model, [...stages, { stage: 'evaluate', name: 'final' }], extra);
    return ppl(r, 'final');
  };
  const out = { dense: await one('dense', MODEL, [{ stage: 'train', method: 'dense', steps: STEPS, lr: 0.01 }]) };
  log(`seed ${seed}: dense ${out.dense.toFixed(3)}`);
  for (const s of SPARSITIES) {
    for (const row of ROWS(s)) {
      const key = `${row.label} @ ${s * 100}%`;
      const model = row.fromDense ? { checkpoint: pretrained } : MODEL;
      out[key] = await one(`${row.method}-${s}`, model, [{ stage: 'train', method: row.method, config: row.config, steps: STEPS, lr: row.fromDense ? 0.003 : 0.01 }]);
      log(`seed ${seed}: ${key} ${out[key].toFixed(3)}`);
    }
  }
  return out;
}

const orderHolds = (q) => SPARSITIES.every((s) => q[`RigL @ ${s * 100}%`] <= q[`SET @ ${s * 100}%`] && q[`SET @ ${s * 100}%`] <= Math.min(q[`static ER @ ${s * 100}%`], q[`static ERK @ ${s * 100}%`]));

if (parts.has('quality')) {
  const runs = scratch('dst');
  log(`pretraining the dense model movement fine-tunes (${PRETRAIN.steps} steps)`);
  const pre = await pretrainOnce(runs);
  const bySeed = [await qualityRuns(0, pre.checkpoint, runs)];
  if (!orderHolds(bySeed[0])) {
    log('RigL <= SET <= static does not hold with seed 0: two more seeds');
    for (const seed of [1, 2]) bySeed.push(await qualityRuns(seed, pre.checkpoint, runs));
  }
  const mean = Object.fromEntries(Object.keys(bySeed[0]).map((k) => [k, bySeed.reduce((a, q) => a + q[k], 0) / bySeed.length]));
  const table = [{ method: 'dense', ...Object.fromEntries(SPARSITIES.map((s) => [`ppl @ ${s * 100}%`, mean.dense])) }];
  for (const row of ROWS(0.8)) table.push({ method: row.label, ...Object.fromEntries(SPARSITIES.map((s) => [`ppl @ ${s * 100}%`, mean[`${row.label} @ ${s * 100}%`]])) });
  console.log(`\nheld-out perplexity after ${STEPS} steps (${bySeed.length === 1 ? 'seed 0' : `mean of seeds 0-${bySeed.length - 1}`}; movement fine-tunes the ${PRETRAIN.steps}-step dense model, whose perplexity is ${ppl(pre.summary, 'dense').toFixed(3)})`);
  printTable(table);
  const holds = orderHolds(mean);
  console.log(`RigL <= SET <= static (ER and ERK) at 80% and 90%: ${holds ? 'holds' : 'does not hold'}${bySeed.length > 1 ? ' on the 3-seed mean' : ''}`);
  console.log('(ER and ERK give the same layer budgets for 2-D weights, so the two static rows train the same masks on this model)');
  results.quality = { steps: STEPS, seeds: bySeed.length, perSeed: bySeed, mean, pretrainedDense: ppl(pre.summary, 'dense'), orderHolds: holds };
}

// ---------------------------------------------------------------- speed
/** One tfjs training step of an MLP block x → relu(x Upᵀ) → Downᵀ with Adam, dense or packed at `density`. */
function tfjsStep(d, hidden, tokens, density, packed, seed) {
  const random = new Random(seed);
  const rng = () => random.next();
  const make = (rows, cols) => {
    const keep = Array.from({ length: rows * cols }, () => rng() < density);
    const w = Float32Array.from({ length: rows * cols }, (_, i) => (keep[i] ? (rng() - 0.5) * 0.1 : 0));
    return { keep, w, rows, cols };
  };
  const layers = [make(hidden, d), make(d, hidden)];
  const x = tf.tensor2d(Float32Array.from({ length: tokens * d }, () => rng() - 0.5), [tokens, d]);
  const g = tf.tensor2d(Float32Array.from({ length: tokens * d }, () => rng() - 0.5), [tokens, d]);
  const adam = new NamedAdam();
  let vars;
  let forward;
  if (packed) {
    const ps = layers.map((l) => csrPattern(maskFromBooleans(l.keep, [l.rows, l.cols])));
    vars = layers.map((l, i) => tf.variable(tf.tensor1d(Float32Array.from(ps[i].flat, (k) => l.w[k]))));
    forward = () => sparseLinearProduct(tf.relu(sparseLinearProduct(x, vars[0], ps[0])), vars[1], ps[1]);
  } else {
    vars = layers.map((l) => tf.variable(tf.tensor2d(l.w, [l.rows, l.cols])));
    forward = () => tf.matMul(tf.relu(tf.matMul(x, vars[0], false, true)), vars[1], false, true);
  }
  const step = () =>
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(forward(), g)), vars);
      adam.apply(vars.map((v, i) => ({ key: `w${i}`, variable: v, grad: grads[v.name] })), 1e-3);
    });
  return {
    step,
    dispose: () => {
      tf.dispose([x, g, ...vars]);
      adam.dispose();
    },
  };
}

/** The largest measured density at which the sparse step clearly wins (>= 1.1x, a margin against noise); 0 when none does. */
function clearWin(points) {
  return Math.max(0, ...points.filter((p) => p.speedup >= 1.1).map((p) => p.density));
}

if (parts.has('speed')) {
  const kernelBench = new URL('../../../kernels/cpu/bench/sparse-step.mjs', import.meta.url);
  if (existsSync(kernelBench)) {
    const { sparseStepBench } = await import(kernelBench.href);
    log('native kernels: MLP block step, dense vs sparse');
    results.kernels = await sparseStepBench({ write: false });
  } else results.notes.push('kernels/cpu/bench/sparse-step.mjs is missing: no native-kernel step timings');

  const shapes = QUICK ? [{ d: 128, hidden: 512, tokens: 64 }] : [{ d: 1024, hidden: 4096, tokens: 512 }, { d: 256, hidden: 1024, tokens: 512 }];
  const densities = [0.5, 0.3, 0.2, 0.1, 0.05];
  results.trainer = [];
  for (const shape of shapes) {
    const dense = tfjsStep(shape.d, shape.hidden, shape.tokens, 1, false, 1);
    const rows = [];
    for (const density of densities) {
      const sparse = tfjsStep(shape.d, shape.hidden, shape.tokens, density, true, 2);
      const t = await compare({ dense: dense.step, sparse: sparse.step }, { reps: QUICK ? 2 : 5, warmup: 1 });
      sparse.dispose();
      rows.push({ density, denseMs: t.dense.median * 1e3, sparseMs: t.sparse.median * 1e3, speedup: t.dense.median / t.sparse.median });
    }
    dense.dispose();
    console.log(`\ntrainer tfjs step, MLP block d ${shape.d} / hidden ${shape.hidden}, ${shape.tokens} tokens (dense: matMul + Adam over all weights; sparse: packed path + Adam over nnz)`);
    printTable(rows.map((r) => ({ density: r.density, 'dense ms': r.denseMs, 'sparse ms': r.sparseMs, speedup: r.speedup })));
    results.trainer.push({ ...shape, weights: shape.d * shape.hidden, rows, clearWin: clearWin(rows) });
  }
  // the threshold for `path: auto`: the largest density the large shape clearly wins at; the smallest measured layer that clearly wins at all
  const large = results.trainer[0];
  const winning = results.trainer.filter((s) => s.clearWin > 0).map((s) => s.weights);
  const threshold = { maxDensity: large.clearWin, minWeights: winning.length > 0 ? Math.min(...winning) : large.weights * 2, measured: new Date().toISOString().slice(0, 10) };
  results.threshold = threshold;
  if (!QUICK) {
    const file = sparsePathFile();
    const stored = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
    stored[cpuModel()] = threshold;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(stored, null, 2));
    renameSync(`${file}.tmp`, file);
    console.log(`\npath: auto threshold for ${cpuModel()}: density <= ${threshold.maxDensity}, >= ${threshold.minWeights} weights (stored in ${file})`);
  }
  // goal lines (native kernels when their bench ran, else the trainer's path)
  const goal = (sparsity, want) => {
    const k = results.kernels?.rows?.find((r) => !r.constantFanIn && Math.abs(r.sparsity - sparsity) < 1e-9)?.speedupMedian;
    const row = large.rows.find((r) => Math.abs(r.density - (1 - sparsity)) < 1e-9);
    const measured = k ?? row?.speedup;
    const source = k !== undefined ? 'native kernels' : 'trainer tfjs path';
    console.log(`goal: sparse step vs dense at ${sparsity * 100}% (${source}): ${measured?.toFixed(2) ?? 'n/a'}x / ${want}x / ${measured !== undefined && measured >= want ? 'reached' : 'not reached'}`);
    return { sparsity, measured, goal: want, reached: measured !== undefined && measured >= want, source };
  };
  results.goals = [goal(0.9, 2.5), goal(0.8, 1.5)];
}

console.log(`\nresults: ${writeResults('dst', results)}`);
