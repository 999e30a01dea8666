// `pnpm bench attention-model`: sparse attention at the model level, side by side. (The kernel benchmark
// of the attention kernels is `pnpm bench attention`, in kernels/cpu/bench.)
//
// 1. KV-cache pruning (Mustafar) at decode. (a) Speed: a Llama of realistic width (d 1024, 16 heads, 4 kv
//    heads, head_dim 64, 4 blocks, random weights from the trainer's initializer; speed does not depend on
//    training) decoded one token at a time through the trainer's Decoder after a 1024-token context, so
//    attention is a real share of a step. The dense cache and the pruned cache at 0 / 50 / 70% (each
//    key and value row of 64 cut to its 64 - round(s · 64) largest-magnitude entries, read through the
//    attentionBitmapKV kernel) are measured in the same run, interleaved rep by rep (every decoder at the
//    same positions), with the cache bytes against the dense float32 cache. (b) Quality: the trainer's
//    pretrained default GPT (600 steps), held-out perplexity computed token by token through the Decoder
//    with the dense cache and with the pruned one (head_dim 8 there: 50% keeps 4 of 8 entries, 70% keeps
//    2, i.e. 75%: the achieved sparsity is listed).
// 2. Sliding-window training (recipes/sliding-window.yaml's pattern: window 8 + 2 sinks, blockSize 8) vs
//    full causal attention, the default GPT pretrained from scratch for the same steps: held-out
//    perplexity and pretraining time.
// 3. DPO with prefix sharing (one sequence [prompt | chosen | rejected] per pair under the
//    prefix-sharing mask) vs two separate passes per pair (prefixSharing false): the dpo stage's time per
//    step on recipes/dpo-prefix-sharing.yaml's data and model, after a short pretraining.
// 4. SpargeAttn prediction at a 512-token context: a Llama (d 64, 4 heads, RoPE) pretrained on the
//    embedded corpus with its attention through the block-sparse kernel (causal, 16-token tiles), then
//    an attention stage installs sparge (calibrated on 16 windows) for the evaluations after it. The
//    held-out perplexity before and after, the share of causal tiles the prediction keeps
//    (attention-density events), and the end-to-end prefill time: the evaluate stages' full-sequence
//    forward passes over the same windows, dense causal (the same kernel with every causal tile) vs
//    sparge (prediction included), each timed twice and the faster kept.
//
// Environment: SPARSE_BENCH_QUICK=1 shrinks everything (a smoke test; figures meaningless);
// SPARSE_BENCH_ATTENTION_MODEL_PARTS=kv-speed,kv-quality,window,dpo,sparge picks parts.
import { fileURLToPath } from 'node:url';
import { chooseBackend, Decoder, embeddedData, evalWindowStarts, initialValues, loadCheckpoint } from '@sparse/trainer';
import { getKernel, kernelBackend, registerKernel } from '@sparse/tensor';
import { printTable, writeResults } from '../../../tooling/bench/harness.mjs';
import { EVAL, MODEL, PRETRAIN, QUICK, cpuInfo, events, log, ppl, pretrainOnce, round, runRecipe, scratch, stageOf } from './common.mjs';

const parts = new Set((process.env.SPARSE_BENCH_ATTENTION_MODEL_PARTS ?? 'kv-speed,kv-quality,window,dpo,sparge').split(','));
const KV_LEVELS = [0, 0.5, 0.7];
const results = { cpu: cpuInfo(), notes: [] };

await chooseBackend();
results.kernels = { gemvSparseInput: kernelBackend('gemvSparseInput'), attentionBitmapKV: kernelBackend('attentionBitmapKV') };
log(`CPU ${results.cpu.model} (avx512f ${results.cpu.avx512f}, avx2 ${results.cpu.avx2}); gemvSparseInput: ${results.kernels.gemvSparseInput}, attentionBitmapKV: ${results.kernels.attentionBitmapKV}`);

const pct = (s) => `${Math.round(s * 100)}%`;
const kib = (b) => round(b / 1024, 1);
const stats = (t) => {
  const s = [...t].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1], reps: s.length };
};

// ---------------------------------------------------------------- 1. KV-cache pruning
if (parts.has('kv-speed')) {
  const spec = QUICK
    ? { architecture: 'llama', vocab: 256, d: 128, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 352, ctx: 256 }
    : { architecture: 'llama', vocab: 512, d: 1024, layers: 4, heads: 16, kvHeads: 4, mlpHidden: 2816, ctx: 2048 };
  const CONTEXT = QUICK ? 128 : 1024;
  const STEPS = QUICK ? 4 : 16;
  const REPS = QUICK ? 2 : 5;
  const values = initialValues(spec, 7);
  const configs = [{ key: 'dense cache', level: undefined }, ...KV_LEVELS.map((s) => ({ key: `pruned ${pct(s)}`, level: s }))];
  const prompt = Array.from({ length: CONTEXT }, (_, i) => (i * 37 + 11) % spec.vocab);
  const cont = Array.from({ length: STEPS * (REPS + 1) }, (_, i) => (i * 53 + 5) % spec.vocab);
  // one decoder per configuration, each prefilled with the same context (untimed; prefill and steps
  // compute attention from the same cache), then STEPS single-token steps per configuration in turn
  for (const c of configs) {
    c.decoder = Decoder.fromValues(spec, values, c.level === undefined ? {} : { kv: { sparsity: c.level } });
    const t0 = performance.now();
    c.decoder.prefill(prompt);
    c.prefillMs = performance.now() - t0;
    c.times = [];
    log(`${c.key}: prefilled ${CONTEXT} tokens in ${(c.prefillMs / 1000).toFixed(1)} s`);
  }
  // the pruned caches' attention timed apart: the registry's kernel wrapped by a timer (highest priority)
  const inner = getKernel('attentionBitmapKV');
  let attentionNs = 0n;
  const unregister = registerKernel({
    name: 'attentionBitmapKV',
    backend: 'bench-timed',
    priority: Number.MAX_SAFE_INTEGER,
    fn: (a) => {
      const t0 = process.hrtime.bigint();
      inner(a);
      attentionNs += process.hrtime.bigint() - t0;
    },
  });
  for (let rep = -1; rep < REPS; rep++) {
    const tokens = cont.slice((rep + 1) * STEPS, (rep + 2) * STEPS);
    for (const c of configs) {
      attentionNs = 0n;
      const t0 = process.hrtime.bigint();
      for (const t of tokens) c.decoder.step(t);
      if (rep >= 0) {
        c.times.push(Number(process.hrtime.bigint() - t0) / 1e9);
        (c.attention ??= []).push(Number(attentionNs) / 1e9);
      }
    }
  }
  unregister();
  const denseRate = STEPS / stats(configs[0].times).median;
  const zeroRate = STEPS / stats(configs[1].times).median;
  const rows = configs.map((c) => {
    const s = c.decoder.kvStats();
    const rate = STEPS / stats(c.times).median;
    return {
      cache: c.key,
      'decode tok/s': round(rate, 1),
      'vs dense': round(rate / denseRate, 2),
      'vs pruned 0%': c.level === undefined ? '-' : round(rate / zeroRate, 2),
      'attention ms/step': c.level === undefined ? '-' : round((1000 * stats(c.attention).median) / STEPS, 2),
      'KV KiB': kib(s.bytes),
      'dense KiB': kib(s.denseBytes),
      'bytes vs dense': round(s.bytes / s.denseBytes, 3),
      'achieved sparsity': round(s.sparsity, 3),
      'prefill s': round(c.prefillMs / 1000, 2),
    };
  });
  log(`decode after ${CONTEXT} positions (${spec.d} wide, ${spec.heads} heads, ${spec.kvHeads} kv heads, head_dim ${spec.d / spec.heads}, ${spec.layers} blocks), ${STEPS} steps x ${REPS} reps:`);
  printTable(rows);
  // both caches attend through the registry's attentionBitmapKV (native when loaded): the dense cache as that
  // kernel's layout with every entry kept, so 'vs dense' is the pruning's effect against the same kernel
  console.log(`attention: dense and pruned caches both through attentionBitmapKV (${results.kernels.attentionBitmapKV}; the dense cache read as every entry kept)`);
  results.kvSpeed = { spec, context: CONTEXT, steps: STEPS, rows, times: Object.fromEntries(configs.map((c) => [c.key, stats(c.times)])), attentionSeconds: Object.fromEntries(configs.filter((c) => c.level !== undefined).map((c) => [c.key, stats(c.attention)])) };
  for (const c of configs) c.decoder = undefined;
}

// (b) quality
if (parts.has('kv-quality')) {
  const runs = scratch('attention-model-kv');
  const pre = await pretrainOnce(runs);
  results.notes.push(...pre.notes);
  const model = await loadCheckpoint(pre.checkpoint);
  const data = embeddedData();
  const ctx = model.spec.ctx;
  const starts = evalWindowStarts(data.heldOut, ctx, EVAL.windows);
  /** Held-out perplexity token by token through a decoder: every window from an empty cache. */
  const decoderPerplexity = (decoder) => {
    let nats = 0;
    let count = 0;
    for (const s of starts) {
      decoder.reset();
      for (let t = 0; t < ctx; t++) {
        const logits = decoder.step(data.heldOut[s + t]);
        const target = data.heldOut[s + t + 1];
        let max = -Infinity;
        for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
        let sum = 0;
        for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
        nats += Math.log(sum) + max - logits[target];
        count++;
      }
    }
    return Math.exp(nats / count);
  };
  const trainerDense = ppl(pre.summary, 'dense');
  const qrows = [];
  const dense = decoderPerplexity(Decoder.fromModel(model));
  qrows.push({ cache: 'dense cache', perplexity: round(dense), 'vs dense': 1, 'achieved sparsity': 0 });
  for (const s of KV_LEVELS) {
    const d = Decoder.fromModel(model, { kv: { sparsity: s } });
    const p = decoderPerplexity(d);
    // the achieved sparsity of one full window
    d.reset();
    for (let t = 0; t < ctx; t++) d.step(data.heldOut[starts[0] + t]);
    qrows.push({ cache: `pruned ${pct(s)}`, perplexity: round(p), 'vs dense': round(p / dense, 4), 'achieved sparsity': round(d.kvStats().sparsity, 3) });
  }
  model.dispose();
  // the same through the trainer's attention stage (method mustafar: the tfjs forward with K and V pruned
  // per token, then the run's held-out evaluation)
  for (const s of KV_LEVELS) {
    const row = qrows.find((r) => r.cache === `pruned ${pct(s)}`);
    try {
      const r = await runRecipe(runs, `mustafar-${s}`, { checkpoint: pre.checkpoint }, [
        { stage: 'attention', method: 'mustafar', config: { sparsity: s } },
        { stage: 'evaluate', name: 'kv' },
      ]);
      row['attention stage perplexity'] = round(ppl(r, 'kv'));
    } catch (err) {
      row['attention stage perplexity'] = 'n/a';
      results.notes.push(`the mustafar attention stage at ${pct(s)} did not run: ${String(err.message ?? err).split('\n')[0]}`);
    }
  }
  qrows[0]['attention stage perplexity'] = round(trainerDense);
  log(`pretrained default GPT (head_dim ${MODEL.d / MODEL.heads}), held-out perplexity through the Decoder (${starts.length} windows of ${ctx}); the trainer's evaluation says ${trainerDense.toFixed(3)} dense:`);
  printTable(qrows);
  results.kvQuality = { model: MODEL, windows: starts.length, trainerDense, rows: qrows };
}

// ---------------------------------------------------------------- 2. sliding-window training
if (parts.has('window')) {
  const runs = scratch('attention-model-window');
  const pattern = { pattern: 'sliding-window', window: 8, sinks: 2, blockSize: 8 };
  const rows = [];
  for (const [label, model] of [
    ['full causal', MODEL],
    ['window 8 + 2 sinks', { ...MODEL, attention: pattern }],
  ]) {
    const r = await runRecipe(runs, label, model, [
      { stage: 'pretrain', steps: PRETRAIN.steps, lr: PRETRAIN.lr },
      { stage: 'evaluate', name: 'final' },
    ]);
    const p = ppl(r, 'final');
    const ms = r.stages.find((s) => s.kind === 'pretrain').ms;
    rows.push({ attention: label, steps: PRETRAIN.steps, perplexity: round(p), 'pretrain s': round(ms / 1000, 1) });
    log(`${label}: held-out perplexity ${p.toFixed(3)} after ${PRETRAIN.steps} steps (${(ms / 1000).toFixed(1)} s)`);
  }
  printTable(rows);
  results.slidingWindow = { model: MODEL, pattern, rows };
}

// ---------------------------------------------------------------- 3. DPO with prefix sharing
if (parts.has('dpo')) {
  const runs = scratch('attention-model-dpo');
  const dataPath = fileURLToPath(new URL('../recipes/data/dpo-pairs.jsonl', import.meta.url));
  const data = { source: 'jsonl', path: dataPath, response: 'chosen', tokenizer: 'char' };
  const STEPS = QUICK ? 4 : 60;
  const rows = [];
  const dpoRun = async (sharing) => {
    const r = await runRecipe(runs, `dpo-${sharing ? 'shared' : 'separate'}`, MODEL, [
      { stage: 'pretrain', steps: QUICK ? 5 : 50, lr: 0.01 },
      { stage: 'train', method: 'dpo', name: 'dpo', steps: STEPS, batch: 16, lr: 0.0005, config: { beta: 0.5, prefixSharing: sharing } },
    ], { data, eval: { windows: 4, batch: 4 } });
    return stageOf(r, 'dpo');
  };
  const ms = { true: [], false: [] };
  // alternated, twice each (machine noise hits both alike)
  for (let rep = 0; rep < (QUICK ? 1 : 2); rep++) {
    for (const sharing of [true, false]) {
      const s = await dpoRun(sharing);
      ms[sharing].push(s.ms / STEPS);
      if (rep === 0) log(`dpo prefixSharing ${sharing}: ${(s.ms / STEPS).toFixed(1)} ms/step${s.summary ? ` (${s.summary})` : ''}`);
    }
  }
  const shared = stats(ms.true).median;
  const separate = stats(ms.false).median;
  rows.push({ dpo: 'prefix sharing (one sequence per pair)', 'ms/step': round(shared, 1), 'vs separate': round(separate / shared, 2) });
  rows.push({ dpo: 'two separate passes', 'ms/step': round(separate, 1), 'vs separate': 1 });
  printTable(rows);
  results.dpo = { model: MODEL, steps: STEPS, batch: 16, rows, msPerStep: { shared: ms.true, separate: ms.false } };
}

// ---------------------------------------------------------------- 4. SpargeAttn prefill at a long context
if (parts.has('sparge')) {
  const runs = scratch('attention-model-sparge');
  const ctx = QUICK ? 128 : 512;
  const model = { architecture: 'llama', vocab: 256, d: 64, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 176, ctx, attention: { pattern: 'causal', blockSize: 16 } };
  const evalLong = { windows: QUICK ? 4 : 64, batch: QUICK ? 2 : 8 };
  const sparge = { blockSize: 16, cdfThreshold: 0.95, simThreshold: 0.5 };
  const steps = QUICK ? 10 : 300;
  const r = await runRecipe(
    runs,
    'sparge-long',
    model,
    [
      { stage: 'pretrain', steps, lr: 0.01, batch: 8 },
      { stage: 'evaluate', name: 'dense 1' },
      { stage: 'evaluate', name: 'dense 2' },
      { stage: 'calibrate', windows: 16 },
      { stage: 'attention', method: 'sparge', config: sparge },
      { stage: 'evaluate', name: 'sparge 1' },
      { stage: 'evaluate', name: 'sparge 2' },
    ],
    { eval: evalLong },
  );
  const ms = (label) => r.stages.find((x) => x.kind === 'evaluate' && x.label.includes(label)).ms;
  const dense = Math.min(ms('dense 1'), ms('dense 2'));
  const sp = Math.min(ms('sparge 1'), ms('sparge 2'));
  const density = events(r.dir, 'attention-density').filter((e) => e.label === 'sparge 1');
  const tokens = evalLong.windows * ctx;
  const row = {
    context: ctx,
    'pretrain steps': steps,
    'ppl dense': round(ppl(r, 'dense 1')),
    'ppl sparge': round(ppl(r, 'sparge 1')),
    'tiles kept': density.length > 0 ? round(density[0].density) : 'n/a',
    'dense prefill tok/s': Math.round(tokens / (dense / 1000)),
    'sparge prefill tok/s': Math.round(tokens / (sp / 1000)),
    speedup: round(dense / sp, 2),
  };
  log(`sparge at ctx ${ctx}: held-out perplexity ${row['ppl dense']} dense -> ${row['ppl sparge']} sparge, ${row['tiles kept']} of the causal tiles computed, prefill ${row['dense prefill tok/s']} -> ${row['sparge prefill tok/s']} tokens/s (${row.speedup}x)`);
  printTable([row]);
  results.sparge = { model, config: sparge, eval: evalLong, row, densityEvents: density, evaluateMs: { dense: [ms('dense 1'), ms('dense 2')], sparge: [ms('sparge 1'), ms('sparge 2')] } };
  results.notes.push('sparge: the dense baseline is the same block-sparse kernel computing every causal tile (the model spec\'s causal pattern); prefill time is the evaluate stage\'s wall time over its windows (forward passes, the loss, and for sparge the per-layer block prediction)');
}

console.log(`results: ${writeResults('attention-model', results)}`);
