// `pnpm bench nm`: (a) 2:4 from scratch on the embedded task with STE, SR-STE, progressive gradient
// flow (gradient-, mask- and structure-decay forms; train method `nm`) and BDWP (train method `bdwp`)
// against dense training of the same steps;
// (b) one-shot magnitude 2:4 with and without channel permutation (prune `permute: true`): kept
// magnitude and perplexity; (c) inference with every linear layer compressed 2:4 through the
// `spmmNM` kernel against dense `gemm`, on the trained default model and at an LLM-like width with
// random weights. The dense run of (a) is the one pretraining; (b) starts from its export.
//
// (c) runs a plain-JS forward pass of the GPT (layer norm, causal attention through gemm, GELU MLP,
// tied output layer) whose linear layers call either kernel; it is checked against the trainer's
// tfjs forward (logits of the same weights) before anything is timed.
//
// Environment: SPARSE_BENCH_QUICK=1 shrinks steps, evaluation and repetitions (a smoke test).
import * as tf from '@tensorflow/tfjs-core';
import { compare, pairedRatio, printTable, writeResults } from '../../../tooling/bench/harness.mjs';
import { nativeInfo, registerCPUKernels } from '@sparse/kernels-cpu';
import { pruneLayer } from '@sparse/pruners';
import { getKernel, tensor, toNM } from '@sparse/tensor';
import { loadCheckpoint, loadExportedModel } from '@sparse/trainer';
import { EVAL, MODEL, PRETRAIN, QUICK, events, exportedIsNM, exportedLinears, linearNamesOf, log, ppl, pretrainOnce, round, runRecipe, scratch, stageOf } from './common.mjs';
import { join } from 'node:path';

const INFERENCE_REPS = QUICK ? 2 : 15;
const runs = scratch('nm');
const notes = [];
const reg = registerCPUKernels();
if (!reg.native) notes.push(`native addon not available (${reg.reason}): (c) ran the reference kernels`);
else notes.push(`native kernels: ${JSON.stringify(nativeInfo())}`);

// ---- (a) 2:4 from scratch ----
log(`dense: pretraining ${JSON.stringify(MODEL)} for ${PRETRAIN.steps} steps (seed 0)`);
const pre = await pretrainOnce(runs);
notes.push(...pre.notes);
const { names: linears } = await linearNamesOf(pre.checkpoint);
const dense = ppl(pre.summary, 'dense');
const scratchRows = [{ training: 'dense', 'held-out ppl': round(dense), 'vs dense': 1, 'final loss': pre.summary.stages[0].summary.replace('final loss ', ''), 'is 2:4': '-', 'train s': round(pre.pretrainMs / 1000, 1) }];
// The nm method's estimators (STE, SR-STE, and progressive gradient flow's gradient-, mask- and
// structure-decay forms), then BDWP (row-wise N:M forward, column-wise backward).
const SCRATCH = [
  ...['ste', 'sr-ste', 'progressive', 'mask-decay', 'structure-decay'].map((estimator) => ({ label: estimator, method: 'nm', config: { n: 2, m: 4, estimator } })),
  { label: 'bdwp', method: 'bdwp', config: { n: 2, m: 4 } },
];
for (const { label: estimator, method, config } of SCRATCH) {
  const r = await runRecipe(runs, `scratch-${estimator}`, MODEL, [
    { stage: 'train', name: 'nm', method, config, steps: PRETRAIN.steps, lr: PRETRAIN.lr },
    { stage: 'evaluate', name: 'trained' },
    { stage: 'export', formats: ['dense'] },
  ]);
  const p = ppl(r, 'trained');
  const nm = await exportedIsNM(r.dir, linears, 2, 4);
  const st = stageOf(r, 'nm');
  scratchRows.push({ training: `2:4 ${estimator}`, 'held-out ppl': round(p), 'vs dense': round(p / dense), 'final loss': /final loss ([\d.]+)/.exec(st.summary)?.[1] ?? '-', 'is 2:4': nm.valid ? 'yes' : 'NO', 'train s': round(st.ms / 1000, 1) });
  log(`2:4 from scratch with ${estimator}: perplexity ${p.toFixed(3)} (dense ${dense.toFixed(3)})`);
}

// ---- (b) one-shot magnitude 2:4, with and without channel permutation ----
const absSum = (ws) => [...ws.values()].reduce((s, w) => s + w.data.reduce((a, v) => a + Math.abs(v), 0), 0);
const denseWeights = await exportedLinears(join(pre.exported, '..', '..'), linears);
const denseAbs = absSum(denseWeights);
const permRows = [];
let prunedDir;
for (const permute of [false, true]) {
  const r = await runRecipe(runs, `magnitude-2of4${permute ? '-permuted' : ''}`, { checkpoint: pre.checkpoint }, [
    { stage: 'prune', name: 'prune', method: 'magnitude', config: { n: 2, m: 4 }, permute },
    { stage: 'evaluate', name: 'pruned' },
    { stage: 'export', formats: ['dense'] },
  ]);
  if (!permute) prunedDir = r.dir;
  const perm = events(r.dir, 'permutation');
  const kept = absSum(await exportedLinears(r.dir, linears));
  permRows.push({
    prune: `magnitude 2:4${permute ? ' + permutation' : ''}`,
    'held-out ppl': round(ppl(r, 'pruned')),
    dense: round(dense),
    'kept |W| (all linears)': round(kept / denseAbs, 4),
    'kept |W| (permuted layers, before -> after)': perm.length ? perm.map((e) => `${e.layer.replace(/\.weight$/, '')}: ${e.keptBefore.toFixed(1)} -> ${e.keptAfter.toFixed(1)}`).join('; ') : permute ? 'no permutation improved a layer' : '-',
  });
  log(`${permRows.at(-1).prune}: perplexity ${permRows.at(-1)['held-out ppl']}, kept magnitude ${permRows.at(-1)['kept |W| (all linears)']}`);
}

// ---- (c) inference: 2:4 through spmmNM vs dense gemm ----
const gemm = getKernel('gemm');
const spmmNM = getKernel('spmmNM');


/**
 * Builds the linear layer operator for weight [out, in]: dense gemm, or spmmNM on its 2:4 compression.
 * y [out, n] = W x [in, n] + beta y (beta 1 adds to what y holds: a bias, or the residual stream).
 */
function makeLinear(w, out, inn, sparse) {
  if (!sparse) return (x, n, y, beta = 0) => gemm({ transA: false, transB: false, m: out, n, k: inn, alpha: 1, a: w, aOffset: 0, lda: inn, b: x, bOffset: 0, ldb: n, beta, c: y, cOffset: 0, ldc: n });
  const layout = toNM(tensor(w, [out, inn]), { n: 2, m: 4 });
  return (x, n, y, beta = 0) => spmmNM({ a: layout, b: x, bOffset: 0, ldb: n, n, alpha: 1, beta, c: y, cOffset: 0, ldc: n });
}

/** Layer norm of each column of x [d, n] (feature-major): one pass for the moments, one for the output. */
/**
 * Reused scratch arrays by name and length: the timed forwards allocate nothing, so garbage
 * collection (megabytes of fresh arrays per pass at d 1024) does not land inside one rep or another.
 */
const scratchArrays = new Map();
function buffer(name, length, type = Float32Array) {
  const key = `${name}:${length}:${type.name}`;
  let b = scratchArrays.get(key);
  if (b === undefined) scratchArrays.set(key, (b = new type(length)));
  return b;
}

function layerNorm(x, d, n, g, b, y = buffer('norm', d * n)) {
  const s1 = buffer('norm mean', n, Float64Array).fill(0);
  const s2 = buffer('norm square', n, Float64Array).fill(0);
  for (let i = 0; i < d; i++) {
    const o = i * n;
    for (let j = 0; j < n; j++) {
      const v = x[o + j];
      s1[j] += v;
      s2[j] += v * v;
    }
  }
  for (let j = 0; j < n; j++) {
    const mean = s1[j] / d;
    s1[j] = mean;
    s2[j] = 1 / Math.sqrt(Math.max(0, s2[j] / d - mean * mean) + 1e-5);
  }
  for (let i = 0; i < d; i++) {
    const o = i * n;
    const gi = g[i];
    const bi = b[i];
    for (let j = 0; j < n; j++) y[o + j] = (x[o + j] - s1[j]) * s2[j] * gi + bi;
  }
  return y;
}

/** y [rows, n] = the bias of each row, broadcast (a product with beta 1 then adds to it). */
const fillBias = (y, bias, rows, n) => {
  for (let i = 0; i < rows; i++) y.fill(bias[i], i * n, (i + 1) * n);
};
const addBias = (y, bias, rows, n) => {
  for (let i = 0; i < rows; i++) {
    const bi = bias[i];
    for (let j = i * n; j < (i + 1) * n; j++) y[j] += bi;
  }
};

const attention = getKernel('denseAttention');
const activation = getKernel('activationF32');

/**
 * One forward pass over `seqs` sequences of `t` tokens, activations feature-major [features, seqs*t].
 * `block` holds the per-block weights and linear operators; `x` the input hidden states [d, N].
 * Attention and GELU run the registry's kernels (native when registered); biases and the residual
 * stream ride in the linear products' beta = 1.
 */
function forwardBlocks(cfg, blocks, x, seqs, t) {
  const { d, heads } = cfg;
  const hd = d / heads;
  const n = seqs * t;
  // one sequence's q, k, v and attention output as the kernel takes them: [heads, t, hd]
  const qh = buffer('q', d * t);
  const kh = buffer('k', d * t);
  const vh = buffer('v', d * t);
  const oh = buffer('attention out', d * t);
  for (const B of blocks) {
    const h = layerNorm(x, d, n, B.ln1g, B.ln1b);
    const qkv = buffer('qkv', 3 * d * n);
    fillBias(qkv, B.qkvb, 3 * d, n);
    B.qkv(h, n, qkv, 1);
    const att = buffer('attention', d * n);
    for (let s = 0; s < seqs; s++) {
      for (let f = 0; f < d; f++) {
        const hh = (f / hd) | 0;
        const o = hh * t * hd + (f - hh * hd);
        const rq = f * n + s * t;
        const rk = (d + f) * n + s * t;
        const rv = (2 * d + f) * n + s * t;
        for (let i = 0; i < t; i++) {
          qh[o + i * hd] = qkv[rq + i];
          kh[o + i * hd] = qkv[rk + i];
          vh[o + i * hd] = qkv[rv + i];
        }
      }
      attention({ heads, seq: t, headDim: hd, q: qh, qOffset: 0, k: kh, kOffset: 0, v: vh, vOffset: 0, out: oh, outOffset: 0, causal: true });
      for (let f = 0; f < d; f++) {
        const hh = (f / hd) | 0;
        const o = hh * t * hd + (f - hh * hd);
        const r = f * n + s * t;
        for (let i = 0; i < t; i++) att[r + i] = oh[o + i * hd];
      }
    }
    addBias(x, B.projb, d, n);
    B.proj(att, n, x, 1);
    const h2 = layerNorm(x, d, n, B.ln2g, B.ln2b);
    const up = buffer('up', B.hidden * n);
    fillBias(up, B.upb, B.hidden, n);
    B.up(h2, n, up, 1);
    activation({ kind: 'gelu-tanh', n: up.length, x: up, xOffset: 0, y: up, yOffset: 0 });
    addBias(x, B.downb, d, n);
    B.down(up, n, x, 1);
  }
  return x;
}

/** The trainer GPT's weights as forward blocks, every linear dense or 2:4-compressed. */
function gptBlocks(values, spec, sparse) {
  const d = spec.d;
  const hidden = Math.round(d * (spec.mlpRatio ?? 4));
  const blocks = [];
  for (let i = 0; i < spec.layers; i++) {
    const p = `h.${i}.`;
    const v = (k) => values.get(p + k);
    blocks.push({
      hidden,
      ln1g: v('ln_1.weight'), ln1b: v('ln_1.bias'), ln2g: v('ln_2.weight'), ln2b: v('ln_2.bias'),
      qkv: makeLinear(v('attn.c_attn.weight'), 3 * d, d, sparse), qkvb: v('attn.c_attn.bias'),
      proj: makeLinear(v('attn.c_proj.weight'), d, d, sparse), projb: v('attn.c_proj.bias'),
      up: makeLinear(v('mlp.c_fc.weight'), hidden, d, sparse), upb: v('mlp.c_fc.bias'),
      down: makeLinear(v('mlp.c_proj.weight'), d, hidden, sparse), downb: v('mlp.c_proj.bias'),
    });
  }
  return blocks;
}

/** Logits [vocab, seqs*t] of the trainer GPT for ids [seqs, t]. */
function gptLogits(values, spec, blocks, ids, seqs, t) {
  const d = spec.d;
  const n = seqs * t;
  const wte = values.get('wte.weight');
  const wpe = values.get('wpe.weight');
  const x = buffer('x', d * n);
  for (let s = 0; s < seqs; s++)
    for (let j = 0; j < t; j++) {
      const id = ids[s * t + j];
      for (let i = 0; i < d; i++) x[i * n + s * t + j] = wte[id * d + i] + wpe[j * d + i];
    }
  forwardBlocks(spec, blocks, x, seqs, t);
  const hf = layerNorm(x, d, n, values.get('ln_f.weight'), values.get('ln_f.bias'));
  const logits = buffer('logits', spec.vocab * n);
  gemm({ transA: false, transB: false, m: spec.vocab, n, k: d, alpha: 1, a: wte, aOffset: 0, lda: d, b: hf, bOffset: 0, ldb: n, beta: 0, c: logits, cOffset: 0, ldc: n });
  return logits;
}

/** Max |ours - tfjs| over the logits, relative to max |tfjs|. */
function checkAgainstTfjs(model, values, blocks, ids, seqs, t) {
  const ours = gptLogits(values, model.spec, blocks, ids, seqs, t);
  const ref = tf.tidy(() => model.logits2d(tf.tensor2d(ids, [seqs, t], 'int32')).dataSync());
  const n = seqs * t;
  const v = model.spec.vocab;
  let err = 0;
  let scale = 0;
  for (let j = 0; j < n; j++)
    for (let c = 0; c < v; c++) {
      err = Math.max(err, Math.abs(ours[c * n + j] - ref[j * v + c]));
      scale = Math.max(scale, Math.abs(ref[j * v + c]));
    }
  return err / scale;
}

const valuesOf = (model) => new Map(Object.entries(model.params).map(([k, p]) => [k, Float32Array.from(p.dataSync())]));
const denseModel = await loadCheckpoint(pre.checkpoint);
const prunedModel = await loadExportedModel(join(prunedDir, 'exports', 'model.safetensors'));
const spec = denseModel.spec;
const SEQS = QUICK ? 2 : 16;
const T = spec.ctx;
const ids = Int32Array.from({ length: SEQS * T }, (_, i) => (i * 7919 + 13) % spec.vocab);
const denseValues = valuesOf(denseModel);
const prunedValues = valuesOf(prunedModel);
const denseBlocks = gptBlocks(denseValues, spec, false);
const sparseBlocks = gptBlocks(prunedValues, spec, true);
const errDense = checkAgainstTfjs(denseModel, denseValues, denseBlocks, ids, SEQS, T);
const errSparse = checkAgainstTfjs(prunedModel, prunedValues, sparseBlocks, ids, SEQS, T);
log(`forward check against the trainer's tfjs logits: dense ${errDense.toExponential(2)}, 2:4 through spmmNM ${errSparse.toExponential(2)} (max abs error / max |logit|)`);
if (!(errDense < 1e-4 && errSparse < 1e-4)) throw new Error(`the plain-JS forward disagrees with the trainer's (relative errors ${errDense}, ${errSparse}); nothing timed`);
denseModel.dispose();
prunedModel.dispose();

const linearOnly = (blocks, d, n) => {
  // every linear layer of every block once, on fixed inputs: the part 2:4 can speed up
  const xs = blocks.map((B) => ({ x: new Float32Array(B.hidden * n).fill(0.5), y: new Float32Array(B.hidden * n) }));
  return () => {
    blocks.forEach((B, i) => {
      const { x, y } = xs[i];
      B.qkv(x, n, y.length >= 3 * d * n ? y : new Float32Array(3 * d * n));
      B.proj(x, n, y);
      B.up(x, n, y);
      B.down(x, n, y);
    });
  };
};

const inference = [];
/** A reused copy of the forward's input (the forward updates its residual stream in place). */
const input = (x0) => {
  const x = buffer('input', x0.length);
  x.set(x0);
  return x;
};
async function timeForward(label, dense, sparse, denseLin, sparseLin, tokens) {
  const r = await compare({ dense, sparse }, { reps: INFERENCE_REPS, warmup: 2 });
  const l = await compare({ dense: denseLin, sparse: sparseLin }, { reps: INFERENCE_REPS, warmup: 2 });
  const row = {
    model: label,
    tokens,
    'dense tok/s': round(tokens / r.dense.median, 0),
    '2:4 tok/s': round(tokens / r.sparse.median, 0),
    // paired: each rep's dense time over the same rep's sparse time, median over reps
    'forward speedup': round(pairedRatio(r, ['dense'], 'sparse')),
    'linears-only speedup': round(pairedRatio(l, ['dense'], 'sparse')),
    'linears share of dense forward': round(l.dense.median / r.dense.median),
  };
  inference.push({ ...row, forwardMs: { dense: r.dense.median * 1e3, sparse: r.sparse.median * 1e3 }, linearsMs: { dense: l.dense.median * 1e3, sparse: l.sparse.median * 1e3 } });
  log(`${label}: 2:4 forward ${row['forward speedup']}x dense (linears only ${row['linears-only speedup']}x)`);
}
await timeForward(
  `trainer default (d ${spec.d}, ${spec.layers} layers, ctx ${T}), trained weights`,
  () => gptLogits(denseValues, spec, denseBlocks, ids, SEQS, T),
  () => gptLogits(prunedValues, spec, sparseBlocks, ids, SEQS, T),
  linearOnly(denseBlocks, spec.d, SEQS * T),
  linearOnly(sparseBlocks, spec.d, SEQS * T),
  SEQS * T,
);

// Random weights (seeded), one sequence of 256 tokens: an LLM-like width (d 1024, 16 heads, MLP 4096,
// 2 blocks), and the trainer's GPT at d 256 (4 heads, MLP 1024, 4 blocks)
const WIDE = QUICK
  ? [{ d: 128, heads: 4, hidden: 512, layers: 1, t: 64, label: 'LLM-like width' }]
  : [
      { d: 1024, heads: 16, hidden: 4096, layers: 2, t: 256, label: 'LLM-like width' },
      { d: 256, heads: 4, hidden: 1024, layers: 4, t: 256, label: 'trainer GPT at d 256' },
    ];
for (const cfg of WIDE) {
  let s = 777 + cfg.d;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let q = s;
    q = Math.imul(q ^ (q >>> 15), q | 1);
    q ^= q + Math.imul(q ^ (q >>> 7), q | 61);
    return ((q ^ (q >>> 14)) >>> 0) / 4294967296;
  };
  const { d, hidden, t } = cfg;
  const mat = (o, i) => Float32Array.from({ length: o * i }, () => (rnd() * 2 - 1) / Math.sqrt(i));
  const vec = (k, scale, offset) => Float32Array.from({ length: k }, () => offset + (rnd() * 2 - 1) * scale);
  const two4 = (w, o, i) => pruneLayer('magnitude', { name: 'random', weight: tensor(w, [o, i]), config: { n: 2, m: 4 } }).weight.data;
  const denseW = [];
  const sparseW = [];
  for (let b = 0; b < cfg.layers; b++) {
    const ws = { qkv: mat(3 * d, d), proj: mat(d, d), up: mat(hidden, d), down: mat(d, hidden) };
    // non-trivial gains and biases, so the check below sees every term
    const common = { hidden, ln1g: vec(d, 0.2, 1), ln1b: vec(d, 0.1, 0), ln2g: vec(d, 0.2, 1), ln2b: vec(d, 0.1, 0), qkvb: vec(3 * d, 0.1, 0), projb: vec(d, 0.1, 0), upb: vec(hidden, 0.1, 0), downb: vec(d, 0.1, 0) };
    const pr = { qkv: two4(ws.qkv, 3 * d, d), proj: two4(ws.proj, d, d), up: two4(ws.up, hidden, d), down: two4(ws.down, d, hidden) };
    denseW.push({ ...common, qkv: makeLinear(ws.qkv, 3 * d, d, false), proj: makeLinear(ws.proj, d, d, false), up: makeLinear(ws.up, hidden, d, false), down: makeLinear(ws.down, d, hidden, false) });
    sparseW.push({ ...common, qkv: makeLinear(pr.qkv, 3 * d, d, true), proj: makeLinear(pr.proj, d, d, true), up: makeLinear(pr.up, hidden, d, true), down: makeLinear(pr.down, d, hidden, true), pruned: pr });
  }
  const x0 = Float32Array.from({ length: d * t }, () => rnd() * 2 - 1);
  // check: spmmNM forward equals the dense-kernel forward of the same pruned weights
  const prunedDense = sparseW.map((B) => ({ ...B, qkv: makeLinear(B.pruned.qkv, 3 * d, d, false), proj: makeLinear(B.pruned.proj, d, d, false), up: makeLinear(B.pruned.up, hidden, d, false), down: makeLinear(B.pruned.down, d, hidden, false) }));
  const ys = forwardBlocks(cfg, sparseW, x0.slice(), 1, t);
  const yd = forwardBlocks(cfg, prunedDense, x0.slice(), 1, t);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ys.length; i++) {
    err = Math.max(err, Math.abs(ys[i] - yd[i]));
    scale = Math.max(scale, Math.abs(yd[i]));
  }
  log(`${cfg.label} forward check: spmmNM vs gemm on the same 2:4 weights, relative error ${(err / scale).toExponential(2)}`);
  if (!(err / scale < 1e-4)) throw new Error(`spmmNM forward disagrees with the dense forward of the same weights (${err / scale})`);
  await timeForward(
    `${cfg.label}, random weights (d ${d}, ${cfg.heads} heads, MLP ${hidden}, ${cfg.layers} blocks, ${t} tokens)`,
    () => forwardBlocks(cfg, denseW, input(x0), 1, t),
    () => forwardBlocks(cfg, sparseW, input(x0), 1, t),
    linearOnly(denseW, d, t),
    linearOnly(sparseW, d, t),
    t,
  );
}

console.log(`\n(a) 2:4 from scratch, ${PRETRAIN.steps} steps each (lr ${PRETRAIN.lr}, batch 8), held-out perplexity`);
printTable(scratchRows);
console.log('\n(b) One-shot magnitude 2:4 of the pretrained model, with and without channel permutation (kept |W|: sum of kept |W| over the dense sum)');
printTable(permRows);
console.log(`\n(c) Inference, every linear layer 2:4 through spmmNM vs dense gemm (${INFERENCE_REPS} interleaved reps; tok/s from medians, speedups paired per rep)`);
printTable(inference.map(({ forwardMs, linearsMs, ...row }) => row));
// the goal: a 256-token prefill at least 1.5x the dense model's tokens/s, at both random-weight widths
const targets = inference
  .filter((r) => r.model.includes('random weights'))
  .map((r) => ({ target: `prefill speedup, ${r.model.split(',')[0]} (${r.tokens} tokens)`, measured: `${r['forward speedup'].toFixed(2)}x`, goal: '>= 1.5x', reached: r['forward speedup'] >= 1.5 ? 'yes' : 'NO' }));
console.log('');
printTable(targets);
notes.push(
  `model ${JSON.stringify(MODEL)}, seed 0; evaluation ${EVAL.windows} held-out windows of ${MODEL.ctx} tokens`,
  '(a) SR-STE lambda 2e-4 (the method default); progressive: gradient-flow decay cosine 1 -> 0 over the stage; masks recomputed every step',
  '(b) channel permutation is searched for the MLP down projections (co-permuting the up projection), as the prune stage does; the other layers are unchanged',
  `(c) kernels: gemm from ${reg.kernels.includes('gemm') ? 'sparse-cpu' : 'the reference'}, spmmNM from ${reg.kernels.includes('spmmNM') ? 'sparse-cpu' : 'the reference'}; attention (the registry's denseAttention, causal) and GELU (activationF32) run the registry's kernels, layer norms and the bias and residual adds plain JavaScript, the same code in both columns (biases and the residual ride in the products' beta = 1); the trainer model's row uses the magnitude 2:4 weights of (b)`,
);
for (const n of notes) console.log(`note: ${n}`);
const file = writeResults('nm', { quick: QUICK, model: MODEL, steps: PRETRAIN.steps, scratch: scratchRows, permutation: permRows, inference, targets, forwardCheck: { dense: errDense, sparse: errSparse }, notes });
log(`wrote ${file}`);
