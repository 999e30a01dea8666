// `pnpm bench pruners`: (a) time and peak memory of SparseGPT, Wanda and magnitude pruning one
// square layer (4096x4096 at full size, with 1024 and 2048 beside it) from 2048 calibration tokens,
// through the @sparse/pruners API with the native kernels registered; (c) the trainer's prune stage with
// and without the native kernels registered (sparse-train registers them); (b) quality: the trainer's
// pretrained default GPT pruned to 50%, 2:4 and 4:8 by each method, perplexity next to dense; (d) the
// structured prune methods: CLOVER (attention products cut to 95% energy) on that model, and
// task-specific expert pruning (one-shot and progressive) on the same model with an 8-expert MoE.
//
// Memory is measured per (method, size) in a fresh child process, so no run inherits another's heap:
// after the weight and calibration inputs exist and a forced GC, the RSS is read; `peak RSS` is
// process.resourceUsage().maxRSS at the end (the kernel's high-water mark of the whole process) minus
// that baseline, and `arrayBuffers` is the high-water of process.memoryUsage().arrayBuffers (typed
// array storage) sampled before and after each phase (pruneLayer is synchronous: no timer can run
// inside it, so this misses short-lived buffers freed inside the call; maxRSS does not).
//
// (a) also runs PyTorch references of SparseGPT and Wanda written from the papers (torch_sparsegpt.py:
// same layer, same calibration inputs, same blocksize and dampening, two threads) in their own
// processes, alternating with ours twice and keeping each side's fastest run, and reports our time and
// peak memory as ratios of theirs, with the agreement of the masks. (The mask agreement compares our
// last run with their last run; both are deterministic.)
//
// Environment: SPARSE_BENCH_QUICK=1 shrinks every size (a smoke test; figures meaningless);
// SPARSE_BENCH_NO_INSTALL=1 never installs PyTorch (the reference columns are then skipped);
// SPARSE_BENCH_PRUNERS_PARTS=speed runs (a) alone (default speed,quality: (a) to (d)).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = process.argv[2] === '--child';
const PARTS = new Set((process.env.SPARSE_BENCH_PRUNERS_PARTS ?? 'speed,quality').split(','));
const TRAINER_CHILD = process.argv[2] === '--trainer-prune';

if (CHILD) {
  await child(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
} else if (TRAINER_CHILD) {
  await trainerPrune(process.argv[3], process.argv[4], process.argv[5], process.argv[6]);
} else {
  await main();
}

/**
 * One trainer prune stage (calibrate + prune + evaluate) from the pretrained checkpoint, in a fresh
 * process, so whether the trainer registered the native kernels (SPARSE_NATIVE_KERNELS=0: it did
 * not) is this process's alone. Prints one JSON line.
 */
async function trainerPrune(method, pattern, checkpoint, root) {
  const { join } = await import('node:path');
  const { PRUNE_PATTERNS, ppl, pruneStages, runRecipe, stageOf } = await import('./common.mjs');
  const config = PRUNE_PATTERNS.find((p) => p.key === pattern).config;
  const label = `trainer-${method}-${pattern.replace('%', 'pct').replace(':', 'of')}-${process.env.SPARSE_NATIVE_KERNELS === '0' ? 'reference' : 'native'}`;
  // the parent's scratch folder (removed when the parent exits)
  const runs = { next: (l) => join(root, l) };
  const r = await runRecipe(runs, label, { checkpoint }, [...pruneStages(method, config), { stage: 'evaluate', name: 'pruned' }]);
  console.log(JSON.stringify({ method, pattern, pruneMs: stageOf(r, 'prune').ms, perplexity: ppl(r, 'pruned') }));
}

/** One (method, size) measurement; prints one JSON line. */
async function child(method, size, tokens) {
  const { registerCPUKernels } = await import('@sparse/kernels-cpu');
  const { ColumnNormAccumulator, HessianAccumulator, pruneLayer } = await import('@sparse/pruners');
  const { tensor } = await import('@sparse/tensor');
  const reg = registerCPUKernels();
  // seeded inputs: weights ~ U(-1, 1); activations with per-channel scales spread over two decades
  // (LLM-like outliers), so Wanda's and SparseGPT's choices differ from magnitude's
  let s = 12345;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const w = tensor(Float32Array.from({ length: size * size }, () => next() * 2 - 1), [size, size]);
  const scale = Float32Array.from({ length: size }, () => 10 ** (2 * next() - 1));
  const x = new Float32Array(tokens * size);
  for (let t = 0; t < tokens; t++) for (let j = 0; j < size; j++) x[t * size + j] = (next() * 2 - 1) * scale[j];
  const xs = tensor(x, [tokens, size]);
  // The PyTorch reference reads the same inputs from here (and our result, to compare).
  const dump = process.env.SPARSE_BENCH_DUMP;
  if (dump) {
    writeFileSync(path.join(dump, 'w.bin'), new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength));
    writeFileSync(path.join(dump, 'x.bin'), new Uint8Array(x.buffer));
  }
  globalThis.gc?.();
  const base = process.memoryUsage();
  let abHigh = base.arrayBuffers;
  const sample = () => {
    abHigh = Math.max(abHigh, process.memoryUsage().arrayBuffers);
  };
  const t0 = performance.now();
  let stats;
  if (method === 'sparsegpt') stats = new HessianAccumulator(size, { name: 'layer' }).add(xs).stats();
  else if (method === 'wanda') stats = new ColumnNormAccumulator(size, { name: 'layer' }).add(xs).stats();
  sample();
  const t1 = performance.now();
  const r = pruneLayer(method, { name: 'layer', weight: w, stats, config: { sparsity: 0.5 } });
  sample();
  const t2 = performance.now();
  const kept = r.weight.data.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0);
  if (dump) writeFileSync(path.join(dump, 'ours.bin'), new Uint8Array(r.weight.data.buffer, r.weight.data.byteOffset, r.weight.data.byteLength));
  const maxRss = process.resourceUsage().maxRSS * 1024;
  console.log(
    JSON.stringify({
      method,
      size,
      tokens,
      native: reg.native,
      statsS: (t1 - t0) / 1000,
      pruneS: (t2 - t1) / 1000,
      totalS: (t2 - t0) / 1000,
      baselineRss: base.rss,
      peakRssDelta: maxRss - base.rss,
      arrayBuffersHighDelta: abHigh - base.arrayBuffers,
      density: kept / (size * size),
    }),
  );
}

async function main() {
  const { printTable, writeResults } = await import('../../../tooling/bench/harness.mjs');
  const { MODEL, PRETRAIN, QUICK, log, pretrainOnce, pruneGrid, round, scratch } = await import('./common.mjs');
  const { nativeInfo, registerCPUKernels } = await import('@sparse/kernels-cpu');
  const { torchSetupFor } = await import('./torch-setup.mjs');
  const reg = registerCPUKernels();
  const notes = [];
  const { torchEnv, setUpTorch } = torchSetupFor({ log, noInstall: process.env.SPARSE_BENCH_NO_INSTALL === '1' });
  const torch = setUpTorch();
  if (torch.warn) notes.push(`PyTorch: ${torch.warn}`);
  if (torch.skip) notes.push(`PyTorch reference skipped: ${torch.skip}`);
  const dumpDir = mkdtempSync(path.join(os.tmpdir(), 'sparse-bench-pruners-'));
  process.on('exit', () => rmSync(dumpDir, { recursive: true, force: true }));
  const targets = [];
  if (!reg.native) notes.push(`native addon not available (${reg.reason}): the reference kernels ran`);
  else notes.push(`native kernels: ${JSON.stringify(nativeInfo())}`);

  // ---- (a) speed and memory ----
  const SIZES = QUICK ? [256] : (process.env.SPARSE_BENCH_SIZES ?? '1024,2048,4096').split(',').map(Number);
  const TOKENS = QUICK ? 256 : 2048;
  const LIMIT_S = 180;
  const speed = [];
  let sparsegptTooSlow = false;
  for (const size of SIZES) {
    for (const method of ['sparsegpt', 'wanda', 'magnitude']) {
      if (method === 'sparsegpt' && sparsegptTooSlow) {
        speed.push({ method, size, tokens: TOKENS, skipped: `a smaller size already took over ${LIMIT_S} s` });
        continue;
      }
      const withTorch = torch.py && method !== 'magnitude';
      const env = withTorch ? { ...process.env, SPARSE_BENCH_DUMP: dumpDir } : process.env;
      const ours = () => JSON.parse(execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', method, String(size), String(TOKENS)], { encoding: 'utf8', maxBuffer: 1 << 24, env }).trim().split('\n').at(-1));
      const theirs = () =>
        JSON.parse(
          execFileSync(torch.py, [path.join(path.dirname(fileURLToPath(import.meta.url)), 'torch_sparsegpt.py'), method, dumpDir, String(size), String(TOKENS), '128', '0.01', '2'], { encoding: 'utf8', env: torchEnv, maxBuffer: 1 << 24 })
            .trim()
            .split('\n')
            .at(-1),
        );
      // Alternating runs, the fastest of each side kept: the machine's load moves between runs.
      const faster = (a, b) => (a === undefined || b.totalS < a.totalS ? b : a);
      let r;
      let t;
      for (let rep = 0; rep < (withTorch && !QUICK ? 2 : 1); rep++) {
        r = faster(r, ours());
        if (withTorch) t = faster(t, theirs());
      }
      speed.push(r);
      log(`${method} ${size}x${size}, ${TOKENS} tokens: stats ${r.statsS.toFixed(2)} s + prune ${r.pruneS.toFixed(2)} s; peak RSS +${(r.peakRssDelta / 2 ** 20).toFixed(0)} MiB`);
      if (withTorch) {
        r.torch = t;
        r.timeVsTorch = r.totalS / t.totalS;
        r.memoryVsTorch = r.peakRssDelta / Math.max(1, t.peakRssDelta);
        log(`  PyTorch ${t.torch} (${t.threads} threads): ${t.totalS.toFixed(2)} s, peak RSS +${(t.peakRssDelta / 2 ** 20).toFixed(0)} MiB; ours ${r.timeVsTorch.toFixed(2)}x its time, ${r.memoryVsTorch.toFixed(2)}x its memory; masks agree on ${(100 * t.maskAgreement).toFixed(3)}% of entries, weights differ by at most ${t.maxWeightDiff.toExponential(2)} (scale ${t.weightScale.toFixed(2)})`);
        const goal = method === 'sparsegpt' ? 1.5 : 1.0;
        const at = `${method} ${size}x${size} ${TOKENS} tokens`;
        targets.push({ target: `${at}: time / PyTorch's`, measured: r.timeVsTorch.toFixed(2), goal: `<= ${goal}`, reached: r.timeVsTorch <= goal ? 'yes' : 'NO' });
        if (method === 'sparsegpt') targets.push({ target: `${at}: peak memory / PyTorch's`, measured: r.memoryVsTorch.toFixed(2), goal: '<= 1.5', reached: r.memoryVsTorch <= 1.5 ? 'yes' : 'NO' });
      }
      if (method === 'sparsegpt' && r.totalS > LIMIT_S) sparsegptTooSlow = true;
    }
  }
  const mib = (b) => round(b / 2 ** 20, 1);
  const speedRows = speed.map((r) =>
    r.skipped
      ? { method: r.method, layer: `${r.size}x${r.size}`, tokens: r.tokens, 'stats s': '-', 'prune s': '-', 'total s': '-', 'peak RSS MiB': '-', 'arrayBuffers MiB': '-', kernels: '-', note: r.skipped }
      : {
          method: r.method,
          layer: `${r.size}x${r.size}`,
          tokens: r.tokens,
          'stats s': round(r.statsS, 2),
          'prune s': round(r.pruneS, 2),
          'total s': round(r.totalS, 2),
          'peak RSS MiB': mib(r.peakRssDelta),
          'arrayBuffers MiB': mib(r.arrayBuffersHighDelta),
          kernels: r.native ? 'native' : 'reference',
          'PyTorch s': r.torch ? round(r.torch.totalS, 2) : '-',
          'x PyTorch time': r.torch ? round(r.timeVsTorch, 2) : '-',
          'PyTorch MiB': r.torch ? mib(r.torch.peakRssDelta) : '-',
          'x PyTorch memory': r.torch ? round(r.memoryVsTorch, 2) : '-',
          'mask agreement %': r.torch ? round(100 * r.torch.maskAgreement, 3) : '-',
          note: r.method === 'sparsegpt' ? 'Hessian (float64)' : r.method === 'wanda' ? 'column norms' : 'no calibration',
        },
  );

  if (!PARTS.has('quality')) {
    // SPARSE_BENCH_PRUNERS_PARTS=speed: (a) alone
    console.log(`\n(a) One ${SIZES.join('/')} square layer, 50% unstructured, ${TOKENS} calibration tokens (stats: accumulating the calibration statistics; memory above the baseline with inputs built)`);
    printTable(speedRows);
    if (targets.length > 0) {
      console.log('');
      printTable(targets);
    }
    for (const n of notes) console.log(`note: ${n}`);
    log(`wrote ${writeResults('pruners', { quick: QUICK, tokens: TOKENS, sizes: SIZES, speed, targets, torch: torch.py ? { python: torch.py } : { skipped: torch.skip }, parts: [...PARTS], notes })}`);
    return;
  }

  // ---- (b) quality on the trainer's default model ----
  const runs = scratch('pruners');
  log(`pretraining ${JSON.stringify(MODEL)} for ${PRETRAIN.steps} steps (seed 0)`);
  const pre = await pretrainOnce(runs);
  notes.push(...pre.notes);
  const grid = await pruneGrid(runs, pre);

  // ---- (c) the trainer's prune stage: native kernels registered (what sparse-train does) vs the TypeScript reference ----
  const trainerRows = [];
  for (const method of ['sparsegpt', 'wanda']) {
    for (const pattern of ['50%', '2:4']) {
      const one = (reference) => {
        const env = { ...process.env, ...(reference ? { SPARSE_NATIVE_KERNELS: '0' } : {}) };
        const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--trainer-prune', method, pattern, pre.checkpoint, runs.root], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
        return JSON.parse(out.trim().split('\n').at(-1));
      };
      const ref = one(true);
      const nat = one(false);
      trainerRows.push({ method, pattern, 'reference s': round(ref.pruneMs / 1000, 2), 'native s': round(nat.pruneMs / 1000, 2), speedup: round(ref.pruneMs / nat.pruneMs, 2), 'ppl reference': round(ref.perplexity), 'ppl native': round(nat.perplexity) });
      log(`trainer ${method} ${pattern}: reference ${(ref.pruneMs / 1000).toFixed(2)} s, native ${(nat.pruneMs / 1000).toFixed(2)} s`);
    }
  }

  console.log(`\n(a) One ${SIZES.join('/')} square layer, 50% unstructured, ${TOKENS} calibration tokens (stats: accumulating the calibration statistics; memory above the baseline with inputs built)`);
  printTable(speedRows);
  if (targets.length > 0) {
    console.log('');
    printTable(targets);
  }
  console.log('\n(b) Held-out perplexity of the trainer default GPT after one-shot pruning (lower is better)');
  printTable(grid.rows);
  // ---- (d) the structured prune methods: CLOVER on the attention products, task-specific expert pruning ----
  const { runRecipe, stageOf: stageNamed, ppl: pplOf } = await import('./common.mjs');
  const structuredRows = [];
  {
    const r = await runRecipe(runs, 'clover-prune', { checkpoint: pre.checkpoint }, [
      { stage: 'prune', name: 'clover', method: 'clover', config: { energy: 0.95 }, targets: ['attn.c_attn', 'attn.c_proj'] },
      { stage: 'evaluate', name: 'clover pruned', data: ['heldout', 'shifted'] },
    ]);
    structuredRows.push({ method: 'clover, 95% of each head\'s Q·K / V·O energy (attention only)', model: 'default GPT', 'ppl before': round(pplOf(pre.summary, 'dense')), 'ppl after': round(pplOf(r, 'clover pruned')), stage: stageNamed(r, 'clover').summary ?? '' });
    log(`clover prune: ${stageNamed(r, 'clover').summary ?? ''}; held-out perplexity ${pplOf(r, 'clover pruned').toFixed(3)}`);
  }
  {
    const moe = { ...MODEL, moe: { experts: 8, topK: 2 } };
    const steps = QUICK ? 20 : 600;
    const base = await runRecipe(runs, 'moe-pretrain', moe, [
      { stage: 'pretrain', steps, lr: 0.01 },
      { stage: 'evaluate', name: '8 experts', data: ['heldout', 'shifted'] },
      { stage: 'export', formats: ['dense'] },
    ]);
    const { join } = await import('node:path');
    const { loadExportedModel, saveCheckpoint } = await import('@sparse/trainer');
    const m = await loadExportedModel(join(base.dir, 'exports', 'model.safetensors'));
    const ckpt = join(base.dir, 'exports', 'model.checkpoint.safetensors');
    await saveCheckpoint(m, ckpt);
    m.dispose();
    for (const [label, config] of [
      ['experts one-shot, keep 1 of 8 (task calibration)', { keep: 1, metric: 'frequency' }],
      ['experts progressive, keep 1 of 8 (drop 2 every 40 of 200 fine-tuning steps)', { keep: 1, metric: 'frequency', progressive: { steps: QUICK ? 10 : 200, every: QUICK ? 2 : 40, drop: 2, lr: 0.003 } }],
    ]) {
      const r = await runRecipe(runs, label.split(',')[0].replace(/\s+/g, '-'), { checkpoint: ckpt }, [
        { stage: 'prune', name: 'experts', method: 'experts', config, data: 'shifted' },
        { stage: 'evaluate', name: 'pruned', data: ['heldout', 'shifted'] },
      ]);
      structuredRows.push({ method: label, model: 'default GPT + MoE 8 experts top-2', 'ppl before': `${round(pplOf(base, '8 experts'))} (task ${round(pplOf(base, '8 experts', 'shifted'))})`, 'ppl after': `${round(pplOf(r, 'pruned'))} (task ${round(pplOf(r, 'pruned', 'shifted'))})`, stage: stageNamed(r, 'experts').summary ?? '' });
      log(`${label}: held-out ${pplOf(r, 'pruned').toFixed(3)}, task ${pplOf(r, 'pruned', 'shifted').toFixed(3)}`);
    }
  }

  console.log('\n(c) The trainer\'s prune stage (calibrate + prune) on that model: native kernels, as sparse-train registers them, vs the TypeScript reference (SPARSE_NATIVE_KERNELS=0), each in a fresh process');
  printTable(trainerRows);
  console.log('\n(d) Structured prune methods (held-out perplexity; "task" is the shifted task the expert pruning calibrates and fine-tunes on)');
  printTable(structuredRows);
  notes.push(
    'memory: each (method, size) runs in a fresh child process; peak RSS = resourceUsage().maxRSS at the end minus RSS after building the inputs and a forced GC; arrayBuffers = high-water of memoryUsage().arrayBuffers sampled around each phase, minus the same baseline',
    `(b): model ${JSON.stringify(MODEL)}, pretrain ${PRETRAIN.steps} steps, seed 0, calibration 64 windows, sequential pruning`,
  );
  for (const n of notes) console.log(`note: ${n}`);
  const file = writeResults('pruners', { quick: QUICK, tokens: TOKENS, sizes: SIZES, speed, targets, torch: torch.py ? { python: torch.py } : { skipped: torch.skip }, grid: grid.rows, cells: grid.cells, trainerPrune: trainerRows, structured: structuredRows, notes });
  log(`wrote ${file}`);
}
