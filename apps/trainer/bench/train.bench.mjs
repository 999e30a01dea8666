// `pnpm bench train`: tokens/s of the trainer's full training step (forward, backward, global-norm
// clip, Adam) on the `sparse-cpu` tfjs backend, on plain tfjs `cpu`, and on the same model and step
// in PyTorch (bench/torch_gpt.py), at two sizes: the trainer's default GPT and a 3.2M-parameter one
// (d 256, 4 layers, ctx 128, batch 16). Candidates are interleaved repetition by repetition and
// summarized by their medians; PyTorch runs as a long-lived child process answering step requests,
// so it is interleaved too. Before timing, all three compute the loss and gradient norm of one
// fixed batch from the same initial weights (PyTorch loads ours by name with strict=True): equal
// parameter counts and equal numbers there mean the same model.
//
// PyTorch comes from Debian (python3-torch + libopenblas0-pthread; without the latter it falls back
// to a reference BLAS at a few GFLOP/s) and is installed when missing; the column is skipped with a
// message when that fails. Its command runs without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, on two
// threads.
//
// Environment: SPARSE_BENCH_QUICK=1 runs fewer, shorter repetitions and skips plain cpu at the big
// size (a smoke test of the script, under a minute); SPARSE_BENCH_NO_INSTALL=1 never runs apt-get;
// SPARSE_BENCH_PROFILE=1 profiles sparse-cpu steps by tfjs kernel at each size (a full run does so
// anyway wherever PyTorch is faster).
import { spawn } from 'node:child_process';
import { torchSetupFor } from './torch-setup.mjs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Random } from '@sparse/tensor';
import { chooseBackend, createModel, defaultSpec, embeddedData, NamedAdam, runSteps, sampleBatch } from '@sparse/trainer';
import { outputPool } from '@sparse/kernels-cpu/tfjs';
import { printTable, writeResults } from '../../../tooling/bench/harness.mjs';

const QUICK = process.env.SPARSE_BENCH_QUICK === '1';
const PROFILE = process.env.SPARSE_BENCH_PROFILE === '1';
const NO_INSTALL = process.env.SPARSE_BENCH_NO_INSTALL === '1';
const THREADS = 2;
const LR = 1e-3;
const CLIP = 1;
const started = Date.now();
const log = (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${line}`);
const here = path.dirname(fileURLToPath(import.meta.url));
const notes = [];
const note = (line) => {
  notes.push(line);
  log(`note: ${line}`);
};

// ---- data and sizes ----
const data = embeddedData();
const vocab = data.tokenizer.vocabSize;
const SIZES = [
  { name: 'default', spec: defaultSpec('gpt', vocab), batch: 8, targetSec: QUICK ? 0.2 : 1, reps: QUICK ? 2 : 7 },
  {
    name: 'd256x4',
    spec: { architecture: 'gpt', vocab, d: 256, layers: 4, heads: 4, ctx: 128, mlpRatio: 4 },
    batch: 16,
    targetSec: 3,
    reps: QUICK ? 1 : 5,
    // QUICK: one step per rep, the init check's forward and backward as the only warm-up
    fixedK: QUICK ? 1 : undefined,
    // plain cpu: a minute or more per step here (several on a busy machine), so two single steps
    // with no warm-up and no init check (one-time costs are lost in that), none in QUICK mode
    cpu: QUICK ? null : { reps: 2, k: 1, check: false },
  },
];

// ---- PyTorch: find it, install it from Debian when missing (torch-setup.mjs) ----
const { torchEnv, setUpTorch } = torchSetupFor({ log, noInstall: NO_INSTALL });

/** torch_gpt.py children still running (ended on the way out, also after an error). */
const running = new Set();

/** torch_gpt.py --serve as a child process: `info` is its first line, run(k) times k steps. */
async function startTorch(py, args) {
  const child = spawn(py, [path.join(here, 'torch_gpt.py'), '--serve', '--threads', String(THREADS), ...args], { env: torchEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr = (stderr + b).slice(-4000)));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(`torch_gpt.py ended: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
    return JSON.parse(r.value);
  };
  running.add(child);
  child.on('exit', () => running.delete(child));
  return {
    info: await next(),
    async run(k) {
      child.stdin.write(`${JSON.stringify({ steps: k })}\n`);
      return next();
    },
    close() {
      child.stdin.end();
      return new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
    },
  };
}

// ---- tfjs backends ----
const choice = await chooseBackend();
const backends = [];
if (choice.name === 'sparse-cpu') backends.push('sparse-cpu');
else note(`sparse-cpu unavailable (trainer picked ${choice.name}: ${choice.reason}); its column is empty`);
// the plain cpu backend prints an "install tfjs-node" banner on its first tensor
const prod = tf.env().getBool('PROD');
tf.env().set('PROD', true);
await tf.setBackend('cpu');
tf.dispose(tf.scalar(0));
tf.env().set('PROD', prod);
backends.push('cpu');

/** A model and Adam state on `backend`, stepped by the trainer's own runSteps. */
async function makeTfjsTrainer(backend, spec, batch) {
  await tf.setBackend(backend);
  const model = createModel(spec, { seed: 0 });
  const variables = new Map(model.variables().map((v) => [v.name, v]));
  const optimizer = new NamedAdam(0.9, 0.95, 1e-8);
  const rng = new Random(1).fork('batches');
  const use = async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
  };
  const stepOpts = { data: data.train, batch, len: spec.ctx, lr: LR, warmup: 0, minLrRatio: 1, clipNorm: CLIP, rng, variables, optimizer, loss: (ids, t) => model.loss(ids, t) };
  return {
    model,
    async check(ids, targets) {
      await use();
      const out = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => model.loss(tf.tensor2d(ids, [batch, spec.ctx], 'int32'), tf.tensor2d(targets, [batch, spec.ctx], 'int32')));
        return [value, tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))))];
      });
      const [loss, norm] = await Promise.all(out.map(async (x) => (await x.data())[0]));
      tf.dispose(out);
      return { loss, gradNorm: norm };
    },
    async run(k) {
      await use();
      return runSteps({ ...stepOpts, steps: k });
    },
    dispose() {
      model.dispose();
      optimizer.dispose();
    },
  };
}

const GEMM_KERNELS = new Set(['BatchMatMul', '_FusedMatMul']);
// tf.customGrad ops (gelu, addTrailing, mulTrailing) show up as one outer kernel around the
// kernels they run, which are profiled too: left out of the sums
const WRAPPERS = new Set(['forward']);

/**
 * Per-kernel time of `steps` sparse-cpu training steps (tf.profile), per step, largest first, and
 * by category: gemm; kernels on parameter-shaped tensors only (the Adam update and the clip's
 * norm); other kernels on activations (forward and backward).
 */
async function profileSteps(trainer, paramShapes, steps) {
  const t0 = performance.now();
  const info = await tf.profile(() => trainer.run(steps));
  const wallMs = (performance.now() - t0) / steps;
  const isParamShaped = (shapes) => shapes.every((s) => s === undefined || s.length === 0 || paramShapes.has(s.join(',')));
  const byKernel = new Map();
  const GEMM = 'gemm';
  const THIN = 'gemm with an m, n or k of 1 (ones-vector sums/broadcasts)';
  const categories = { [GEMM]: 0, [THIN]: 0, 'optimizer+clip (parameter-shaped)': 0, 'elementwise/other on activations': 0 };
  const flops = { [GEMM]: 0, [THIN]: 0 };
  let kernelMs = 0;
  let calls = 0;
  for (const k of info.kernels) {
    if (WRAPPERS.has(k.name)) continue;
    const ms = k.kernelTimeMs / steps;
    kernelMs += ms;
    calls++;
    let cat;
    if (GEMM_KERNELS.has(k.name)) {
      // out [..., m, n] from a [..., m, k] (or its transpose): k = a.size / (a's batch * m)
      const [a] = k.inputShapes;
      const out = k.outputShapes[0];
      const m = out[out.length - 2];
      const n = out[out.length - 1];
      const depth = a.reduce((x, y) => x * y, 1) / (a.slice(0, -2).reduce((x, y) => x * y, 1) * m);
      cat = Math.min(m, n, depth) === 1 ? THIN : GEMM;
      flops[cat] += (2 * out.reduce((x, y) => x * y, 1) * depth) / steps;
    } else {
      cat = isParamShaped(k.inputShapes) ? 'optimizer+clip (parameter-shaped)' : 'elementwise/other on activations';
    }
    categories[cat] += ms;
    const e = byKernel.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0, shapes: new Map() };
    e.calls++;
    e.ms += ms;
    const shape = k.inputShapes.map((x) => `[${x?.join(',') ?? ''}]`).join(' ');
    e.shapes.set(shape, (e.shapes.get(shape) ?? 0) + ms);
    byKernel.set(k.name, e);
  }
  const r1 = (x) => Number(x.toFixed(1));
  const top = [...byKernel.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 15)
    .map((e) => ({
      kernel: e.kernel,
      callsPerStep: e.calls / steps,
      ms: r1(e.ms),
      percentOfKernels: r1((100 * e.ms) / kernelMs),
      topShapes: [...e.shapes].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([sh, ms]) => `${sh} ${ms.toFixed(1)}`),
    }));
  return {
    steps,
    wallMsPerStep: r1(wallMs),
    kernelMsPerStep: r1(kernelMs),
    kernelCallsPerStep: calls / steps,
    categories: Object.fromEntries(
      Object.entries(categories).map(([k, v]) => [k, { ms: r1(v), percent: r1((100 * v) / kernelMs), ...(k in flops ? { gflops: Number((flops[k] / 1e9).toPrecision(3)), gflopsPerSec: Number((flops[k] / 1e6 / v).toPrecision(3)) } : {}) }]),
    ),
    top,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * sparse-cpu steps with its output pool on and off, alternating (on, off, on, off), each after one
 * untimed step in that mode: minor page faults (fresh pages touched) and wall ms per step, medians.
 */
async function poolSideBySide(trainer, k) {
  const limit = outputPool.stats().limitBytes;
  const runs = { on: [], off: [] };
  try {
    for (const mode of ['on', 'off', 'on', 'off']) {
      outputPool.setLimit(mode === 'on' ? limit : 0);
      await trainer.run(1);
      const r0 = process.resourceUsage();
      const t0 = performance.now();
      await trainer.run(k);
      const ms = (performance.now() - t0) / k;
      runs[mode].push({ faults: (process.resourceUsage().minorPageFault - r0.minorPageFault) / k, ms });
    }
  } finally {
    outputPool.setLimit(limit);
  }
  const sum = (xs) => ({ faultsPerStep: Math.round(median(xs.map((x) => x.faults))), msPerStep: Number(median(xs.map((x) => x.ms)).toFixed(1)) });
  return { steps: k, limitMb: limit / 2 ** 20, on: sum(runs.on), off: sum(runs.off) };
}
const relDiff = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

// ---- run ----
log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`);
const torchSetup = setUpTorch();
if (torchSetup.skip) note(`PyTorch column skipped: ${torchSetup.skip}`);
if (torchSetup.warn) note(`PyTorch: ${torchSetup.warn}`);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'sparse-train-bench-'));
const dataFile = path.join(tmp, 'train.i32');
writeFileSync(dataFile, new Uint8Array(data.train.buffer, data.train.byteOffset, data.train.byteLength));
const results = { quick: QUICK, threads: THREADS, lr: LR, clipNorm: CLIP, vocab, loadAvgStart: os.loadavg(), sizes: [], torch: null, notes };
let torchInfo = null;
try {
  for (const size of SIZES) {
    const { spec, batch } = size;
    const tokensPerStep = batch * spec.ctx;
    log(`== ${size.name}: gpt d ${spec.d}, ${spec.layers} layers, ${spec.heads} heads, ctx ${spec.ctx}, mlp ${spec.mlpRatio}x, vocab ${vocab}, batch ${batch} (${tokensPerStep} tokens/step)`);
    const cands = [];
    for (const b of backends) {
      const special = b === 'cpu' ? size.cpu : undefined;
      if (special === null) {
        note(`${size.name}: plain cpu not timed in QUICK mode (a minute or more per step)`);
        continue;
      }
      cands.push({ name: b, reps: special?.reps ?? size.reps, fixedK: special?.k ?? size.fixedK, check: special?.check ?? true, trainer: await makeTfjsTrainer(b, spec, batch) });
    }
    if (size.cpu) note(`${size.name}: plain cpu timed on ${size.cpu.reps} single steps, without warm-up or init check (the default size checks it)`);
    // our parameters (the same values on every backend: same seed)
    const refModel = cands[0]?.trainer.model ?? createModel(spec, { seed: 0 });
    const params = refModel.numParams();

    // one fixed batch for the same-model check
    const fixed = sampleBatch(data.train, batch, spec.ctx, new Random(7));
    const chk = { ids: fixed.inputs, targets: fixed.targets };
    const checks = {};
    for (const c of cands) if (c.check) checks[c.name] = await c.trainer.check(chk.ids, chk.targets);

    let torch = null;
    if (torchSetup.py) {
      // our initial weights, by name, for torch_gpt.py to load with strict=True
      const values = refModel.values();
      const shapes = Object.fromEntries(Object.entries(refModel.params).map(([n, v]) => [n, v.shape]));
      const weightsFile = path.join(tmp, `${size.name}.f32`);
      const flat = new Float32Array([...values.values()].reduce((n, v) => n + v.length, 0));
      let off = 0;
      for (const v of values.values()) {
        flat.set(v, off);
        off += v.length;
      }
      writeFileSync(weightsFile, new Uint8Array(flat.buffer));
      const manifest = path.join(tmp, `${size.name}.json`);
      writeFileSync(manifest, JSON.stringify({ file: weightsFile, params: [...values.keys()].map((name) => ({ name, shape: shapes[name] })) }));
      const checkFile = path.join(tmp, `${size.name}.check.i32`);
      const both = new Int32Array(2 * chk.ids.length);
      both.set(chk.ids);
      both.set(chk.targets, chk.ids.length);
      writeFileSync(checkFile, new Uint8Array(both.buffer));
      const args = ['--vocab', vocab, '--d', spec.d, '--layers', spec.layers, '--heads', spec.heads, '--ctx', spec.ctx, '--mlp-ratio', spec.mlpRatio, '--batch', batch, '--lr', LR, '--clip', CLIP];
      try {
        torch = await startTorch(torchSetup.py, [...args.map(String), '--weights', manifest, '--data', dataFile, '--check', checkFile]);
        torchInfo ??= torch.info;
        checks.pytorch = { loss: torch.info.checkLoss, gradNorm: torch.info.checkGradNorm };
        if (torch.info.params !== params) note(`${size.name}: PyTorch model has ${torch.info.params} parameters, ours ${params}`);
        cands.push({ name: 'pytorch', reps: size.reps, fixedK: size.fixedK, check: true, trainer: torch });
      } catch (err) {
        note(`${size.name}: PyTorch column skipped: ${err.message}`);
      }
    }
    if (refModel !== cands[0]?.trainer.model) refModel.dispose();
    const refName = Object.keys(checks)[0];
    const ref = checks[refName];
    for (const [name, c] of Object.entries(checks)) {
      log(`check ${name}: initial loss ${c.loss.toFixed(5)} (ln V ${Math.log(vocab).toFixed(5)}), grad norm ${c.gradNorm.toFixed(5)}`);
      c.lossRelDiff = relDiff(c.loss, ref.loss);
      c.gradNormRelDiff = relDiff(c.gradNorm, ref.gradNorm);
      if (c.lossRelDiff > 1e-4 || c.gradNormRelDiff > 1e-3) note(`${size.name}: ${name} disagrees with ${refName} at init (loss ${c.loss} vs ${ref.loss}, grad norm ${c.gradNorm} vs ${ref.gradNorm})`);
    }

    // warm-up steps (after the check's forward and backward): the second one's time sizes the
    // candidate's repetitions (steps per rep) to about targetSec; one is enough when it is slower
    for (const c of cands) {
      c.times = [];
      c.losses = [];
      if (c.fixedK) {
        c.k = c.fixedK;
        continue;
      }
      const timedStep = async () => {
        const t0 = performance.now();
        await c.trainer.run(1);
        return (performance.now() - t0) / 1000;
      };
      let one = await timedStep();
      if (one < size.targetSec) one = await timedStep();
      c.k = Math.max(1, Math.min(200, Math.round(size.targetSec / one)));
      log(`${c.name}: warm-up step ${(one * 1e3).toFixed(1)} ms; ${c.reps} reps of ${c.k} steps`);
    }
    const maxReps = Math.max(...cands.map((c) => c.reps));
    for (let r = 0; r < maxReps; r++) {
      for (const c of cands) {
        if (r >= c.reps) continue;
        const t0 = performance.now();
        const out = await c.trainer.run(c.k);
        c.times.push((performance.now() - t0) / 1000);
        c.losses.push(...out.losses);
      }
    }
    const row = { size: size.name, config: { ...spec, batch }, params, torchParams: torch?.info.params ?? null, tokensPerStep, checks, candidates: {} };
    for (const c of cands) {
      const stepSec = median(c.times) / c.k;
      row.candidates[c.name] = {
        stepsPerRep: c.k,
        reps: c.reps,
        medianStepMs: Number((stepSec * 1e3).toFixed(2)),
        minStepMs: Number(((Math.min(...c.times) / c.k) * 1e3).toFixed(2)),
        maxStepMs: Number(((Math.max(...c.times) / c.k) * 1e3).toFixed(2)),
        tokensPerSec: tokensPerStep / stepSec,
        // the least disturbed repetition, for a busy machine
        tokensPerSecBest: (tokensPerStep * c.k) / Math.min(...c.times),
        firstLoss: c.losses[0],
        lastLoss: c.losses[c.losses.length - 1],
      };
      log(`${size.name} ${c.name}: ${row.candidates[c.name].medianStepMs} ms/step, ${row.candidates[c.name].tokensPerSec.toFixed(0)} tokens/s (loss ${c.losses[0].toFixed(3)} -> ${c.losses[c.losses.length - 1].toFixed(3)})`);
    }
    const tps = (n) => row.candidates[n]?.tokensPerSec;
    if (tps('sparse-cpu') && tps('cpu')) row.sparseCpuVsCpu = tps('sparse-cpu') / tps('cpu');
    if (tps('sparse-cpu') && tps('pytorch')) row.sparseCpuVsPytorch = tps('sparse-cpu') / tps('pytorch');

    const sparse = cands.find((c) => c.name === 'sparse-cpu');
    if (sparse) {
      row.pool = await poolSideBySide(sparse.trainer, sparse.k);
      log(`${size.name} sparse-cpu output pool: ${row.pool.on.faultsPerStep} minor page faults/step with it, ${row.pool.off.faultsPerStep} without; ${row.pool.on.msPerStep} vs ${row.pool.off.msPerStep} ms/step`);
    }
    if (sparse && (PROFILE || (!QUICK && row.sparseCpuVsPytorch !== undefined && row.sparseCpuVsPytorch < 1))) {
      const paramShapes = new Set(sparse.trainer.model.variables().map((v) => v.shape.join(',')));
      row.profile = await profileSteps(sparse.trainer, paramShapes, Math.max(1, Math.min(sparse.k * 2, QUICK ? 1 : 3)));
      log(`profile of sparse-cpu at ${size.name}: ${row.profile.wallMsPerStep} ms wall per step, ${row.profile.kernelMsPerStep} ms in ${row.profile.kernelCallsPerStep} tfjs kernel calls`);
    }
    results.sizes.push(row);
    for (const c of cands) {
      if (c.name === 'pytorch') await c.trainer.close();
      else c.trainer.dispose();
    }
  }
} finally {
  for (const child of running) child.kill();
  rmSync(tmp, { recursive: true, force: true });
}
results.torch = torchInfo && { python: torchSetup.py, version: torchInfo.torch, threads: torchInfo.threads, blas: torchInfo.blas, gemm512Gflops: torchInfo.gemm512Gflops, ompWaitPolicy: torchEnv.OMP_WAIT_POLICY };
if (torchInfo && !torchInfo.blas.some((l) => /openblas/i.test(l))) note(`PyTorch is not using OpenBLAS (${torchInfo.blas.join(', ') || 'no BLAS library seen'}): expect a few GFLOP/s`);
results.loadAvgEnd = os.loadavg();
if (Math.max(results.loadAvgStart[0], results.loadAvgEnd[0]) > os.cpus().length * 1.25) {
  note(`the machine was busy (load average ${results.loadAvgStart[0].toFixed(1)} -> ${results.loadAvgEnd[0].toFixed(1)} on ${os.cpus().length} CPUs): absolute tokens/s are low, ratios are what to read`);
}

// ---- report ----
console.log('');
if (results.torch) console.log(`PyTorch ${results.torch.version} (${results.torch.python}), ${results.torch.threads} threads, BLAS ${results.torch.blas.join(', ') || 'unknown'} (512^3 gemm ${results.torch.gemm512Gflops.toFixed(1)} GFLOP/s), OMP_WAIT_POLICY=${results.torch.ompWaitPolicy}`);
const fmtTps = (c) => (c ? `${c.tokensPerSec.toFixed(0)} / ${c.tokensPerSecBest.toFixed(0)} (${c.reps}x${c.stepsPerRep} steps)` : 'not run');
printTable(
  results.sizes.map((r) => ({
    size: r.size,
    model: `d${r.config.d} L${r.config.layers} H${r.config.heads} ctx${r.config.ctx} b${r.config.batch}`,
    'params ours/torch': `${r.params}/${r.torchParams ?? '-'}`,
    'sparse-cpu tok/s median / best': fmtTps(r.candidates['sparse-cpu']),
    'cpu tok/s': fmtTps(r.candidates.cpu),
    'PyTorch tok/s': fmtTps(r.candidates.pytorch),
    'x cpu': r.sparseCpuVsCpu ?? '-',
    'x PyTorch': r.sparseCpuVsPytorch ?? '-',
  })),
);
console.log('');
printTable(
  results.sizes.flatMap((r) =>
    Object.entries(r.checks).map(([name, c]) => ({
      size: r.size,
      backend: name,
      'init loss': c.loss.toFixed(5),
      'ln V': Math.log(vocab).toFixed(5),
      'grad norm': c.gradNorm.toFixed(5),
      'loss rel diff': c.lossRelDiff.toExponential(1),
      'norm rel diff': c.gradNormRelDiff.toExponential(1),
    })),
  ),
);
const pooled = results.sizes.filter((r) => r.pool);
if (pooled.length) {
  console.log('\nsparse-cpu output pool (recycled kernel output storage), on vs off, alternating runs:');
  printTable(
    pooled.map((r) => ({
      size: r.size,
      'steps per run': r.pool.steps,
      'page faults/step on': r.pool.on.faultsPerStep,
      'page faults/step off': r.pool.off.faultsPerStep,
      'ms/step on': r.pool.on.msPerStep,
      'ms/step off': r.pool.off.msPerStep,
    })),
  );
}
for (const r of results.sizes) {
  if (!r.profile) continue;
  const p = r.profile;
  console.log(`\nsparse-cpu step at ${r.size} (tf.profile, per step over ${p.steps}): ${p.wallMsPerStep} ms wall, ${p.kernelMsPerStep} ms inside ${p.kernelCallsPerStep} kernel calls`);
  printTable(Object.entries(p.categories).map(([category, c]) => ({ category, 'ms/step': c.ms, '% kernels': c.percent, 'GFLOP/step': c.gflops ?? '', 'GFLOP/s': c.gflopsPerSec ?? '' })));
  console.log('');
  printTable(p.top.map((k) => ({ kernel: k.kernel, 'calls/step': k.callsPerStep, 'ms/step': k.ms, '% kernels': k.percentOfKernels, 'largest input shapes (ms/step)': k.topShapes.join('; ') })));
}
console.log('');
for (const n of notes) console.log(`note: ${n}`);
results.seconds = (Date.now() - started) / 1000;
console.log(`\nwrote ${writeResults('train', results)} in ${results.seconds.toFixed(0)} s`);
