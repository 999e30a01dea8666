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
import { compare, printTable, writeResults } from '../../../tooling/bench/harness.mjs';
import { nativeInfo, registerCPUKernels } from '@sparse/kernels-cpu';
import { pruneLayer } from '@sparse/pruners';
import { getKernel, tensor, toNM } from '@sparse/tensor';
import { loadCheckpoint, loadExportedModel } from '@sparse/trainer';
import { EVAL, MODEL, PRETRAIN, QUICK, events, exportedIsNM, exportedLinears, linearNamesOf, log, ppl, pretrainOnce, round, runRecipe, scratch, stageOf } from './common.mjs';
import { join } from 'node:path';

const REPS = QUICK ? 2 : 7;
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

function gemmCall(m, n, k, a, aOffset, lda, b, bOffset, ldb, c, cOffset, ldc, transA = false, transB = false) {
  gemm({ transA, transB, m, n, k, alpha: 1, a, aOffset, lda, b, bOffset, ldb, beta: 0, c, cOffset, ldc });
}

/** Builds the linear layer operator for weight [out, in]: dense gemm, or spmmNM on its 2:4 compression. */
function makeLinear(w, out, inn, sparse) {
  if (!sparse) return (x, n, y) => gemmCall(out, n, inn, w, 0, inn, x, 0, n, y, 0, n);
  const layout = toNM(tensor(w, [out, inn]), { n: 2, m: 4 });
  return (x, n, y) => spmmNM({ a: layout, b: x, bOffset: 0, ldb: n, n, alpha: 1, beta: 0, c: y, cOffset: 0, ldc: n });
}

function layerNorm(x, d, n, g, b) {
  const y = new Float32Array(d * n);
  const mean = new Float64Array(n);
  const sq = new Float64Array(n);
  for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) mean[j] += x[i * n + j];
  for (let j = 0; j < n; j++) mean[j] /= d;
  for (let i = 0; i < d; i++)
    for (let j = 0; j < n; j++) {
      const c = x[i * n + j] - mean[j];
      sq[j] += c * c;
    }
  for (let j = 0; j < n; j++) sq[j] = 1 / Math.sqrt(sq[j] / d + 1e-5);
  for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) y[i * n + j] = (x[i * n + j] - mean[j]) * sq[j] * g[i] + b[i];
  return y;
}

const addBias = (y, bias, rows, n) => {
  for (let i = 0; i < rows; i++) for (let j = 0; j < n; j++) y[i * n + j] += bias[i];
};

/**
 * One forward pass over `seqs` sequences of `t` tokens, activations feature-major [features, seqs*t].
 * `block` holds the per-block weights and linear operators; `x` the input hidden states [d, N].
 */
function forwardBlocks(cfg, blocks, x, seqs, t) {
  const { d, heads } = cfg;
  const hd = d / heads;
  const n = seqs * t;
  const scores = new Float32Array(t * t);
  for (const B of blocks) {
    const h = layerNorm(x, d, n, B.ln1g, B.ln1b);
    const qkv = new Float32Array(3 * d * n);
    B.qkv(h, n, qkv);
    addBias(qkv, B.qkvb, 3 * d, n);
    const att = new Float32Array(d * n);
    for (let s = 0; s < seqs; s++) {
      for (let hh = 0; hh < heads; hh++) {
        // scores[tq, tk] = q_h[:, tq] . k_h[:, tk]
        gemmCall(t, t, hd, qkv, hh * hd * n + s * t, n, qkv, (d + hh * hd) * n + s * t, n, scores, 0, t, true, false);
        const scale = 1 / Math.sqrt(hd);
        for (let q = 0; q < t; q++) {
          let mx = -Infinity;
          for (let k = 0; k <= q; k++) mx = Math.max(mx, scores[q * t + k] * scale);
          let sum = 0;
          for (let k = 0; k < t; k++) {
            const e = k <= q ? Math.exp(scores[q * t + k] * scale - mx) : 0;
            scores[q * t + k] = e;
            sum += e;
          }
          for (let k = 0; k <= q; k++) scores[q * t + k] /= sum;
        }
        // att_h[:, tq] = sum_k v_h[:, tk] p[tq, tk]
        gemmCall(hd, t, t, qkv, (2 * d + hh * hd) * n + s * t, n, scores, 0, t, att, hh * hd * n + s * t, n, false, true);
      }
    }
    const a = new Float32Array(d * n);
    B.proj(att, n, a);
    addBias(a, B.projb, d, n);
    for (let i = 0; i < d * n; i++) x[i] += a[i];
    const h2 = layerNorm(x, d, n, B.ln2g, B.ln2b);
    const up = new Float32Array(B.hidden * n);
    B.up(h2, n, up);
    addBias(up, B.upb, B.hidden, n);
    for (let i = 0; i < up.length; i++) {
      const v = up[i];
      up[i] = 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    }
    const down = new Float32Array(d * n);
    B.down(up, n, down);
    addBias(down, B.downb, d, n);
    for (let i = 0; i < d * n; i++) x[i] += down[i];
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
  const x = new Float32Array(d * n);
  for (let s = 0; s < seqs; s++)
    for (let j = 0; j < t; j++) {
      const id = ids[s * t + j];
      for (let i = 0; i < d; i++) x[i * n + s * t + j] = wte[id * d + i] + wpe[j * d + i];
    }
  forwardBlocks(spec, blocks, x, seqs, t);
  const hf = layerNorm(x, d, n, values.get('ln_f.weight'), values.get('ln_f.bias'));
  const logits = new Float32Array(spec.vocab * n);
  gemmCall(spec.vocab, n, d, wte, 0, d, hf, 0, n, logits, 0, n);
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
async function timeForward(label, dense, sparse, denseLin, sparseLin, tokens) {
  const r = await compare({ dense, sparse }, { reps: REPS, warmup: 1 });
  const l = await compare({ dense: denseLin, sparse: sparseLin }, { reps: REPS, warmup: 1 });
  const row = {
    model: label,
    tokens,
    'dense tok/s': round(tokens / r.dense.median, 0),
    '2:4 tok/s': round(tokens / r.sparse.median, 0),
    'forward speedup': round(r.dense.median / r.sparse.median),
    'linears-only speedup': round(l.dense.median / l.sparse.median),
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

// LLM-like width, random weights (seeded): 2 blocks, d 1024, 16 heads, MLP 4096, one sequence of 256 tokens
const WIDE = QUICK ? { d: 128, heads: 4, hidden: 512, layers: 1, t: 64 } : { d: 1024, heads: 16, hidden: 4096, layers: 2, t: 256 };
{
  let s = 777;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let q = s;
    q = Math.imul(q ^ (q >>> 15), q | 1);
    q ^= q + Math.imul(q ^ (q >>> 7), q | 61);
    return ((q ^ (q >>> 14)) >>> 0) / 4294967296;
  };
  const { d, hidden, t } = WIDE;
  const mat = (o, i) => Float32Array.from({ length: o * i }, () => (rnd() * 2 - 1) / Math.sqrt(i));
  const two4 = (w, o, i) => pruneLayer('magnitude', { name: 'random', weight: tensor(w, [o, i]), config: { n: 2, m: 4 } }).weight.data;
  const denseW = [];
  const sparseW = [];
  for (let b = 0; b < WIDE.layers; b++) {
    const ws = { qkv: mat(3 * d, d), proj: mat(d, d), up: mat(hidden, d), down: mat(d, hidden) };
    const common = { hidden, ln1g: new Float32Array(d).fill(1), ln1b: new Float32Array(d), ln2g: new Float32Array(d).fill(1), ln2b: new Float32Array(d), qkvb: new Float32Array(3 * d), projb: new Float32Array(d), upb: new Float32Array(hidden), downb: new Float32Array(d) };
    const pr = { qkv: two4(ws.qkv, 3 * d, d), proj: two4(ws.proj, d, d), up: two4(ws.up, hidden, d), down: two4(ws.down, d, hidden) };
    denseW.push({ ...common, qkv: makeLinear(ws.qkv, 3 * d, d, false), proj: makeLinear(ws.proj, d, d, false), up: makeLinear(ws.up, hidden, d, false), down: makeLinear(ws.down, d, hidden, false) });
    sparseW.push({ ...common, qkv: makeLinear(pr.qkv, 3 * d, d, true), proj: makeLinear(pr.proj, d, d, true), up: makeLinear(pr.up, hidden, d, true), down: makeLinear(pr.down, d, hidden, true), pruned: pr });
  }
  const x0 = Float32Array.from({ length: d * t }, () => rnd() * 2 - 1);
  // check: spmmNM forward equals the dense-kernel forward of the same pruned weights
  const prunedDense = sparseW.map((B) => ({ ...B, qkv: makeLinear(B.pruned.qkv, 3 * d, d, false), proj: makeLinear(B.pruned.proj, d, d, false), up: makeLinear(B.pruned.up, hidden, d, false), down: makeLinear(B.pruned.down, d, hidden, false) }));
  const ys = forwardBlocks(WIDE, sparseW, x0.slice(), 1, t);
  const yd = forwardBlocks(WIDE, prunedDense, x0.slice(), 1, t);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ys.length; i++) {
    err = Math.max(err, Math.abs(ys[i] - yd[i]));
    scale = Math.max(scale, Math.abs(yd[i]));
  }
  log(`wide forward check: spmmNM vs gemm on the same 2:4 weights, relative error ${(err / scale).toExponential(2)}`);
  if (!(err / scale < 1e-4)) throw new Error(`spmmNM forward disagrees with the dense forward of the same weights (${err / scale})`);
  await timeForward(
    `LLM-like width, random weights (d ${d}, ${WIDE.heads} heads, MLP ${hidden}, ${WIDE.layers} blocks, ${t} tokens)`,
    () => forwardBlocks(WIDE, denseW, x0.slice(), 1, t),
    () => forwardBlocks(WIDE, sparseW, x0.slice(), 1, t),
    linearOnly(denseW, d, t),
    linearOnly(sparseW, d, t),
    t,
  );
}

console.log(`\n(a) 2:4 from scratch, ${PRETRAIN.steps} steps each (lr ${PRETRAIN.lr}, batch 8), held-out perplexity`);
printTable(scratchRows);
console.log('\n(b) One-shot magnitude 2:4 of the pretrained model, with and without channel permutation (kept |W|: sum of kept |W| over the dense sum)');
printTable(permRows);
console.log(`\n(c) Inference, every linear layer 2:4 through spmmNM vs dense gemm (median of ${REPS}, interleaved)`);
printTable(inference.map(({ forwardMs, linearsMs, ...row }) => row));
notes.push(
  `model ${JSON.stringify(MODEL)}, seed 0; evaluation ${EVAL.windows} held-out windows of ${MODEL.ctx} tokens`,
  '(a) SR-STE lambda 2e-4 (the method default); progressive: gradient-flow decay cosine 1 -> 0 over the stage; masks recomputed every step',
  '(b) channel permutation is searched for the MLP down projections (co-permuting the up projection), as the prune stage does; the other layers are unchanged',
  `(c) kernels: gemm from ${reg.kernels.includes('gemm') ? 'sparse-cpu' : 'the reference'}, spmmNM from ${reg.kernels.includes('spmmNM') ? 'sparse-cpu' : 'the reference'}; attention, layer norms, GELU and the tied output layer run the same code in both columns; the trainer model's row uses the magnitude 2:4 weights of (b)`,
);
for (const n of notes) console.log(`note: ${n}`);
const file = writeResults('nm', { quick: QUICK, model: MODEL, steps: PRETRAIN.steps, scratch: scratchRows, permutation: permRows, inference, forwardCheck: { dense: errDense, sparse: errSparse }, notes });
log(`wrote ${file}`);
