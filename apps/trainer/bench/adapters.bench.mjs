// `pnpm bench adapters`: after pretraining, fine-tune on the embedded shifted task with
// full fine-tuning and with parameter-efficient methods at (as far as each allows) one trainable
// budget: target-task perplexity, forgetting on the original task (held-out perplexity change),
// peak memory and time per step, side by side. SPP runs on a SparseGPT 2:4 base.
//
// Each row trains in a fresh child process (so peak figures are its own): `tf peak` is the
// high-water of the bytes held by live tfjs tensors during the training run (tfjs-core's engine
// counter, read on every tensor allocation), `peak RSS` is process.resourceUsage().maxRSS at the end
// of the training run minus the RSS before it started (the model, data and backend setup included,
// as the 0-step row shows; for the unmerged bottleneck rows the peaks also cover their in-run
// evaluation, since an unmerged adapter is only applied inside its run). SFT keeps its delta and Adam state in plain typed arrays, outside tfjs:
// RSS sees them, `tf peak` does not. Evaluation runs after the peak is read.
//
// Environment: SPARSE_BENCH_QUICK=1 shrinks steps and evaluation (a smoke test; figures meaningless);
// SPARSE_BENCH_ADAPTERS_ROWS=lora,lora-ist,... runs only those rows.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === '--child') await child(JSON.parse(process.argv[3]));
else await main();

/** Trains one row from its checkpoint, reads the peaks, then evaluates the result; prints one JSON line. */
async function child(job) {
  const tf = await import('@tensorflow/tfjs-core');
  const { loadExportedModel, saveCheckpoint } = await import('@sparse/trainer');
  const { runRecipe, scratch, stageOf } = await import('./common.mjs');
  const runs = scratch(`adapters-${job.key}`);
  const engine = tf.engine();
  let high = 0;
  const track = engine.trackTensor.bind(engine);
  engine.trackTensor = (a, backend) => {
    track(a, backend);
    if (engine.state.numBytes > high) high = engine.state.numBytes;
  };
  const rss0 = process.memoryUsage().rss;
  high = engine.state.numBytes;
  const tf0 = engine.state.numBytes;
  // An unmerged adapter (a bottleneck form cannot merge) is evaluated inside its own run, where it is
  // applied; its peaks then include that evaluation. Merged ones are exported and evaluated afresh.
  const unmerged = job.stage.merge === false;
  const after = { stage: 'evaluate', name: 'after', data: ['heldout', 'shifted'] };
  const r = await runRecipe(runs, 'train', { checkpoint: job.checkpoint }, unmerged ? [job.stage, after] : [job.stage, { stage: 'export', formats: ['dense'] }]);
  const peakRss = process.resourceUsage().maxRSS * 1024 - rss0;
  const tfPeak = high - tf0;
  const st = stageOf(r, 'tune');
  let e = r;
  if (!unmerged) {
    const exported = join(r.dir, 'exports', 'model.safetensors');
    const model = await loadExportedModel(exported);
    const ckpt = join(r.dir, 'exports', 'model.checkpoint.safetensors');
    await saveCheckpoint(model, ckpt);
    model.dispose();
    e = await runRecipe(runs, 'eval', { checkpoint: ckpt }, [after]);
  }
  let nm = null;
  if (job.checkNM) {
    const { exportedIsNM } = await import('./common.mjs');
    nm = await exportedIsNM(r.dir, job.linears, 2, 4);
  }
  console.log(JSON.stringify({ key: job.key, stageMs: st.ms, summary: st.summary, peakRss, tfPeak, evaluations: e.evaluations, nm }));
}

async function main() {
  const { printTable, writeResults } = await import('../../../tooling/bench/harness.mjs');
  const { listMethods } = await import('@sparse/trainer');
  const { EVAL, MODEL, PRETRAIN, QUICK, linearNamesOf, log, ppl, pretrainOnce, pruneStages, round, runRecipe, scratch } = await import('./common.mjs');
  const STEPS = QUICK ? 10 : 200;
  const runs = scratch('adapters');
  const notes = [];

  log(`pretraining ${JSON.stringify(MODEL)} for ${PRETRAIN.steps} steps (seed 0)`);
  const pre = await pretrainOnce(runs, { evalData: ['heldout', 'shifted'] });
  notes.push(...pre.notes);
  const { names: linears, infos, params: allParams } = await linearNamesOf(pre.checkpoint);
  const linearWeights = infos.reduce((s, l) => s + l.out * l.in, 0);
  // the budget: LoRA r = 2 on every linear layer
  const perRank = infos.reduce((s, l) => s + l.out + l.in, 0);
  const BUDGET = 2 * perRank;
  log(`linear layers: ${infos.length}, ${linearWeights} weights; budget ${BUDGET} trainable (LoRA r = 2, ${((BUDGET / linearWeights) * 100).toFixed(2)}% of the linear weights)`);

  // the 2:4 base for SPP (its masks are not carried by a checkpoint; SPP's W ⊙ (1 + u vᵀ) keeps zeros zero anyway)
  const base24 = await runRecipe(runs, 'sparsegpt-2of4', { checkpoint: pre.checkpoint }, [
    ...pruneStages('sparsegpt', { n: 2, m: 4 }),
    { stage: 'evaluate', name: 'pruned', data: ['heldout', 'shifted'] },
    { stage: 'export', formats: ['dense'] },
  ]);
  const { loadExportedModel, saveCheckpoint } = await import('@sparse/trainer');
  const m24 = await loadExportedModel(join(base24.dir, 'exports', 'model.safetensors'));
  const ckpt24 = join(base24.dir, 'exports', 'model.checkpoint.safetensors');
  await saveCheckpoint(m24, ckpt24);
  m24.dispose();

  const sumBy = (f) => infos.reduce((s, l) => s + f(l), 0);
  const S2FT_GROUPS = Math.max(1, Math.round(BUDGET / sumBy((l) => l.in)));
  const rosaDensity = (BUDGET - perRank) / linearWeights;
  const sftDensity = BUDGET / linearWeights;
  const shifted = { data: 'shifted', steps: STEPS };
  const ROWS = [
    { key: 'none', label: 'no training (0 steps)', stage: { stage: 'train', name: 'tune', method: 'dense', ...shifted, steps: 0 }, budget: '0' },
    { key: 'full', label: 'full FT (train dense)', stage: { stage: 'train', name: 'tune', method: 'dense', ...shifted, lr: 0.003 }, budget: 'all parameters' },
    { key: 'lora', label: 'lora r=2', stage: { stage: 'adapt', name: 'tune', method: 'lora', config: { r: 2, alpha: 4 }, ...shifted, lr: 0.005 } },
    { key: 'dynamic-rank', label: 'dynamic-rank r=2', stage: { stage: 'adapt', name: 'tune', method: 'dynamic-rank', config: { r: 2, alpha: 4 }, ...shifted, lr: 0.005 } },
    { key: 'mosa', label: 'mosa r=2, 2 modules', stage: { stage: 'adapt', name: 'tune', method: 'mosa', config: { r: 2, alpha: 4, modules: 2 }, ...shifted, lr: 0.005 } },
    { key: 'rosa', label: `rosa r=1 + ${(rosaDensity * 100).toFixed(2)}% (Fisher support)`, stage: { stage: 'adapt', name: 'tune', method: 'rosa', config: { r: 1, alpha: 2, density: rosaDensity }, ...shifted, lr: 0.005 } },
    { key: 'sft', label: `sft ${(sftDensity * 100).toFixed(2)}%`, stage: { stage: 'adapt', name: 'tune', method: 'sft', config: { density: sftDensity }, ...shifted, lr: 0.01 } },
    { key: 's2ft', label: `s2ft ${S2FT_GROUPS} rows/layer`, stage: { stage: 'adapt', name: 'tune', method: 's2ft', config: { axis: 'row', groupSize: 1, groups: S2FT_GROUPS, selection: 'magnitude' }, ...shifted, lr: 0.005 } },
    { key: 'spp', label: 'spp on 2:4 base', base: '2:4', stage: { stage: 'adapt', name: 'tune', method: 'spp', config: {}, ...shifted, lr: 0.01 }, checkNM: true },
    { key: 's2ft-coupled', label: 's2ft 1 head + 16 channels/block (coupled, partial backprop)', stage: { stage: 'adapt', name: 'tune', method: 's2ft', config: { heads: 1, channels: 16, partialBackprop: true }, ...shifted, lr: 0.005 } },
    { key: 'sara', label: `sara ${(sftDensity * 100).toFixed(2)}% (nuclear norm, re-selection at half)`, stage: { stage: 'adapt', name: 'tune', method: 'sara', config: { density: sftDensity, lambda: 0.001, reselectAt: 0.5 }, ...shifted, lr: 0.005 } },
    { key: 'snell', label: 'snell dim 4, 90% sparse (random init, layer budget)', stage: { stage: 'adapt', name: 'tune', method: 'snell', config: { dim: 4, sparsity: 0.9, init: 'random', allocate: { every: 20 } }, ...shifted, lr: 0.005 } },
    { key: 'dsee', label: `dsee r=1 + ${(rosaDensity * 100).toFixed(2)}%, merged weight pruned 50%`, stage: { stage: 'adapt', name: 'tune', method: 'dsee', config: { r: 1, alpha: 2, density: rosaDensity, prune: { sparsity: 0.5 } }, ...shifted, lr: 0.005 } },
    { key: 'lt-sft', label: `sft ${(sftDensity * 100).toFixed(2)}%, lottery ticket (LT-SFT)`, stage: { stage: 'adapt', name: 'tune', method: 'sft', config: { density: sftDensity, lottery: { steps: Math.max(1, Math.round(STEPS / 2)) } }, ...shifted, lr: 0.01 } },
    { key: 'clover', label: 'clover (attention Q/K, V/O singular values)', stage: { stage: 'adapt', name: 'tune', method: 'clover', targets: ['attn.c_attn', 'attn.c_proj'], ...shifted, lr: 0.01 } },
    { key: 'sparse-adapter-bottleneck', label: 'sparse-adapter bottleneck r=2, 40% sparse (unmerged)', stage: { stage: 'adapt', name: 'tune', method: 'sparse-adapter', config: { r: 2, alpha: 4, sparsity: 0.4, form: 'bottleneck', activation: 'relu' }, merge: false, ...shifted, lr: 0.005 } },
    // IST (Yao et al. 2024): each step trains the adapters (or deltas) of one of the 2 blocks, drawn by
    // learned importance; probes every 10 steps scale one block's contribution by 0.25
    { key: 'lora-ist', label: 'lora r=2 + IST (1 of 2 blocks per step)', stage: { stage: 'adapt', name: 'tune', method: 'lora', config: { r: 2, alpha: 4 }, ist: { update: 0.5, suppress: 0.5, every: 10, probes: 2 }, ...shifted, lr: 0.005 } },
    { key: 'sft-ist', label: `sft ${(sftDensity * 100).toFixed(2)}% + IST (1 of 2 blocks per step)`, stage: { stage: 'adapt', name: 'tune', method: 'sft', config: { density: sftDensity, ist: { update: 0.5, suppress: 0.5, every: 10, probes: 2 } }, ...shifted, lr: 0.01 } },
    { key: 'mosa-bottleneck', label: 'mosa bottleneck r=2, 2 modules (unmerged)', stage: { stage: 'adapt', name: 'tune', method: 'mosa', config: { r: 2, alpha: 4, modules: 2, form: 'bottleneck' }, merge: false, ...shifted, lr: 0.005 } },
  ];
  // every method must exist in the catalogue (`sparse-train methods`)
  const catalogue = listMethods();
  const known = (kind, name) => catalogue.some((m) => m.kind === kind && m.name === name);
  const skipped = [];
  const results = [];
  // SPARSE_BENCH_ADAPTERS_ROWS=key,key runs only those rows (the pretraining and the 2:4 base still run)
  const only = process.env.SPARSE_BENCH_ADAPTERS_ROWS?.split(',').filter(Boolean);
  if (only?.length) {
    const unknownKeys = only.filter((k) => !ROWS.some((r) => r.key === k));
    if (unknownKeys.length) throw new Error(`SPARSE_BENCH_ADAPTERS_ROWS: no rows ${unknownKeys.join(', ')} (rows: ${ROWS.map((r) => r.key).join(', ')})`);
    notes.push(`only the rows ${only.join(', ')} (SPARSE_BENCH_ADAPTERS_ROWS)`);
  }
  for (const row of ROWS) {
    if (only?.length && !only.includes(row.key)) continue;
    if (!known(row.stage.stage, row.stage.method)) {
      skipped.push({ method: row.label, reason: `no ${row.stage.stage} method '${row.stage.method}' in the catalogue` });
      continue;
    }
    const job = { key: row.key, checkpoint: row.base === '2:4' ? ckpt24 : pre.checkpoint, stage: row.stage, checkNM: row.checkNM === true, linears };
    let out;
    let why;
    // a workspace package being rebuilt meanwhile (its dist briefly missing) is retried, not reported
    for (let attempt = 0; attempt < 4 && out === undefined; attempt++) {
      try {
        const text = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(job)], { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'pipe'] });
        out = JSON.parse(text.trim().split('\n').at(-1));
      } catch (err) {
        const text = String(err.stderr ?? err.message);
        why = text.trim().split('\n').filter((l) => /Error|error/.test(l))[0] ?? String(err.message).split('\n')[0];
        if (!text.includes('ERR_MODULE_NOT_FOUND')) break;
        log(`${row.label}: a dependency's dist is missing (being rebuilt?); retrying in 30 s`);
        await new Promise((r) => setTimeout(r, 30000));
      }
    }
    if (out === undefined) {
      skipped.push({ method: row.label, reason: why });
      log(`${row.label}: failed (${why})`);
      continue;
    }
    const before = row.base === '2:4' ? base24 : pre.summary;
    const beforeLabel = row.base === '2:4' ? 'pruned' : 'dense';
    const find = (data) => out.evaluations.find((e) => e.data === data).perplexity;
    const trainable = row.key === 'full' ? allParams : row.key === 'none' ? 0 : Number(/(\d+) trainable/.exec(out.summary ?? '')?.[1] ?? NaN);
    const r = {
      method: row.label,
      base: row.base ?? 'dense',
      trainable,
      'shifted ppl before': round(ppl(before, beforeLabel, 'shifted')),
      'shifted ppl after': round(find('shifted')),
      'held-out before': round(ppl(before, beforeLabel)),
      'held-out after': round(find('heldout')),
      forgetting: round(find('heldout') - ppl(before, beforeLabel)),
      'ms/step': row.stage.steps ? round(out.stageMs / row.stage.steps, 1) : '-',
      'tf peak KiB': round(out.tfPeak / 1024, 0),
      'peak RSS MiB': round(out.peakRss / 2 ** 20, 1),
    };
    if (out.nm) r['still 2:4'] = out.nm.valid ? 'yes' : 'NO';
    results.push({ ...r, lr: row.stage.lr, config: row.stage.config, summary: out.summary });
    log(`${row.label}: shifted ${r['shifted ppl before']} -> ${r['shifted ppl after']}, held-out ${r['held-out before']} -> ${r['held-out after']}, ${r['ms/step']} ms/step, ${trainable} trainable`);
  }

  console.log(`\nFine-tuning on the shifted task, ${STEPS} steps each (batch 8), budget ${BUDGET} trainable = LoRA r=2 on the ${infos.length} linear layers (${((BUDGET / linearWeights) * 100).toFixed(2)}% of ${linearWeights} linear weights)`);
  printTable(results.map(({ lr, config, summary, ...r }) => ({ ...r, 'still 2:4': r['still 2:4'] ?? '-' })));
  if (skipped.length) {
    console.log('\nSkipped');
    printTable(skipped);
  }
  notes.push(
    `model ${JSON.stringify(MODEL)}, seed 0, pretrain ${PRETRAIN.steps} steps; evaluation ${EVAL.windows} windows of ${MODEL.ctx} tokens of each held-out stream`,
    'forgetting = held-out perplexity (original task) after fine-tuning minus before (the dense model; for SPP the SparseGPT 2:4 model)',
    `lr: full FT 0.003 (the train stage default), lora / dynamic-rank / mosa / rosa / s2ft 0.005 (as recipes/lora-finetune.yaml), sft and spp 0.01 (as recipes/sft-finetune.yaml, spp-recovery.yaml); warmup 10%, cosine decay, clip 1`,
    "dynamic-rank: the adapt stage prunes rank-1 components by importance on its default cubic schedule (config.rankBudget: from r per layer to r/2 per layer on average between 20% and 70% of the steps); trainable is the count at attach time",
    'ms/step = the training stage time / steps (it includes the checkpoint written every 100 steps and at the end)',
    `budget matching: lora and dynamic-rank r=2; rosa r=1 plus a sparse term of density ${rosaDensity.toFixed(4)}; sft density ${sftDensity.toFixed(4)}; s2ft ${S2FT_GROUPS} rows of every layer (rows x in per layer: the closest whole number); spp's u, v are fixed at out + in per layer (= LoRA r=1); full FT trains every parameter, embeddings and norms included`,
  );
  for (const n of notes) console.log(`note: ${n}`);
  const file = writeResults('adapters', { quick: QUICK, model: MODEL, steps: STEPS, budget: BUDGET, linearWeights, rows: results, skipped, notes });
  log(`wrote ${file}`);
}
