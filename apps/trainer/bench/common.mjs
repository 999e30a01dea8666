// Shared pieces of the trainer benchmarks (quality, pruners, nm, adapters): the default small GPT,
// one pretraining per benchmark whose exported dense model seeds every later run, recipe runs in
// scratch folders, perplexities read from a run's evaluations, and N:M checks of exported weights.
//
// Environment: SPARSE_BENCH_QUICK=1 shrinks every size (a smoke test of the scripts, figures meaningless).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuModel, loadCheckpoint, loadExportedModel, resolveRecipe, saveCheckpoint, startRun } from '@sparse/trainer';
import { isNM } from '@sparse/nm';
import { tensor } from '@sparse/tensor';
import { openSafetensors } from '@sparse/tensor/node';

export const QUICK = process.env.SPARSE_BENCH_QUICK === '1';
export const SEED = 0;
/** The trainer's default model (recipes/default.yaml). */
export const MODEL = { architecture: 'gpt', d: 32, layers: 2, heads: 4, ctx: 32 };
/** Pretraining as in the shipped recipes. */
export const PRETRAIN = { steps: QUICK ? 40 : 600, lr: 0.01 };
/** Held-out windows per evaluation (256 x 32 tokens = 8192 tokens at full size). */
export const EVAL = { windows: QUICK ? 16 : 256, batch: 32 };

/** The CPU the figures come from: its model name and whether it lists AVX-512F and AVX2. */
export function cpuInfo() {
  let flags = '';
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
  } catch {
    // not Linux: the model name is all there is
  }
  return { model: cpuModel(), avx512f: /\bavx512f\b/.test(flags), avx2: /\bavx2\b/.test(flags) };
}

const started = Date.now();
export const log = (line) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${line}`);

/** A scratch folder for this benchmark's runs, removed at exit unless SPARSE_BENCH_KEEP=1. */
export function scratch(name) {
  const root = mkdtempSync(join(tmpdir(), `sparse-bench-${name}-`));
  if (process.env.SPARSE_BENCH_KEEP !== '1') process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  let k = 0;
  return { root, next: (label) => join(root, `${String(k++).padStart(2, '0')}-${label.replace(/[^A-Za-z0-9._-]/g, '_')}`) };
}

/** Runs a recipe (model: a spec or { checkpoint }) quietly in a fresh folder; returns the summary and the folder. */
export async function runRecipe(runs, label, model, stages, extra = {}) {
  const recipe = resolveRecipe({ name: label, seed: SEED, model, eval: EVAL, stages, ...extra });
  const dir = runs.next(label);
  const t0 = performance.now();
  const summary = await startRun(recipe, { dir, mode: 'quiet' });
  return { ...summary, dir, wallMs: performance.now() - t0 };
}

/** Perplexity of the evaluation labelled `label` on `data` (the shifted one is stored as '<label> (shifted task)'). */
export function ppl(summary, label, data = 'heldout') {
  const want = data === 'shifted' ? `${label} (shifted task)` : label;
  const e = summary.evaluations.find((x) => x.label === want && x.data === data);
  if (!e) throw new Error(`no '${data}' evaluation labelled '${label}' in ${summary.dir}; have ${summary.evaluations.map((x) => `${x.label}/${x.data}`).join(', ')}`);
  return e.perplexity;
}

/** The stage report entry labelled `label`. */
export function stageOf(summary, label) {
  const s = summary.stages.find((x) => x.label === label);
  if (!s) throw new Error(`no stage labelled '${label}' in ${summary.dir}; have ${summary.stages.map((x) => x.label).join(', ')}`);
  return s;
}

/** The run's metrics.jsonl events of one kind. */
export function events(dir, kind) {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l))
    .filter((e) => e.event === kind);
}

/**
 * Pretrains the default model (or `model`, with `pretrain`'s steps and rate) once (dense, seeded), evaluates it and exports it. An exported
 * model.safetensors is then tried directly as a recipe's `model: { checkpoint }`; when the trainer
 * cannot read it that way, it is rewritten once with saveCheckpoint (same weights, the checkpoint's
 * metadata) and the reason is kept in `notes`. Returns the checkpoint path for every later run.
 */
export async function pretrainOnce(runs, { evalData = ['heldout'], model = MODEL, pretrain = PRETRAIN } = {}) {
  const notes = [];
  const r = await runRecipe(runs, 'pretrain', model, [
    { stage: 'pretrain', steps: pretrain.steps, lr: pretrain.lr },
    { stage: 'evaluate', name: 'dense', data: evalData },
    { stage: 'export', formats: ['dense'] },
  ]);
  const exported = join(r.dir, 'exports', 'model.safetensors');
  let checkpoint = exported;
  try {
    await runRecipe(runs, 'checkpoint-probe', { checkpoint: exported }, [{ stage: 'evaluate', name: 'probe' }], { eval: { windows: 1, batch: 1 } });
    notes.push('the export stage\'s model.safetensors loads directly as a recipe model checkpoint');
  } catch (err) {
    const model = await loadExportedModel(exported);
    checkpoint = join(r.dir, 'exports', 'model.checkpoint.safetensors');
    await saveCheckpoint(model, checkpoint);
    model.dispose();
    notes.push(`the export stage's model.safetensors does not load as a recipe model checkpoint (${String(err.message ?? err).split('\n')[0]}); rewritten with loadExportedModel + saveCheckpoint`);
  }
  return { checkpoint, exported, summary: r, notes, pretrainMs: stageOf(r, 'pretrain:dense#0').ms };
}

/** Every linear weight of an exported model (dense safetensors), as [out, in] tensors, by name. */
export async function exportedLinears(dir, linearNames) {
  const reader = await openSafetensors(join(dir, 'exports', 'model.safetensors'));
  try {
    const out = new Map();
    for (const name of linearNames) {
      const t = await reader.readTensor(name);
      out.set(name, tensor(Float32Array.from(t.data), [...t.shape]));
    }
    return out;
  } finally {
    await reader.close();
  }
}

/** Whether every linear weight of the run's exported model is N:M along rows (counting exact zeros as pruned). */
export async function exportedIsNM(dir, linearNames, n = 2, m = 4) {
  const weights = await exportedLinears(dir, linearNames);
  const bad = [];
  for (const [name, w] of weights) if (!isNM(w, { n, m }).valid) bad.push(name);
  return { valid: bad.length === 0, violations: bad };
}

/** The linear layers of a checkpoint's model (names and infos) and its parameter count. */
export async function linearNamesOf(checkpoint) {
  const model = await loadCheckpoint(checkpoint);
  const infos = model.linears();
  const params = model.numParams();
  model.dispose();
  return { names: infos.map((l) => l.name), infos, params };
}

export const round = (x, digits = 3) => (x === null || x === undefined || Number.isNaN(x) ? x : Number(x.toFixed(digits)));

/** The one-shot grid: methods (rows) x patterns (columns), each cell a run from the pretrained checkpoint. */
export const PRUNE_METHODS = [
  // magnitude's default compares |W| across the whole layer; Wanda compares within each output row
  { label: 'magnitude', method: 'magnitude', config: {} },
  { label: 'magnitude (per row)', method: 'magnitude', config: { granularity: 'row' }, unstructuredOnly: true },
  { label: 'wanda', method: 'wanda', config: {} },
  { label: 'sparsegpt', method: 'sparsegpt', config: {} },
];
export const PRUNE_PATTERNS = [
  { key: '50%', config: { sparsity: 0.5 } },
  { key: '2:4', config: { n: 2, m: 4 } },
  { key: '4:8', config: { n: 4, m: 8 } },
];

/** Stages that prune the loaded model with `method` at `pattern` (calibration first, as every shipped recipe does). */
export function pruneStages(method, config, extra = {}) {
  return [
    { stage: 'calibrate', windows: QUICK ? 16 : 64 },
    { stage: 'prune', name: 'prune', method, config, ...extra },
  ];
}

/**
 * Prunes the pretrained model with every method at every pattern; returns rows { method, '50%', '2:4', '4:8' }
 * of held-out perplexity, the dense row first, and per-cell prune-stage times.
 */
export async function pruneGrid(runs, pre) {
  const dense = ppl(pre.summary, 'dense');
  const rows = [{ method: 'dense', ...Object.fromEntries(PRUNE_PATTERNS.map((p) => [p.key, round(dense)])) }];
  const cells = [];
  for (const m of PRUNE_METHODS) {
    const row = { method: m.label };
    for (const p of PRUNE_PATTERNS) {
      // per-row and per-layer magnitude choose the same N:M groups: only the unstructured cell differs
      if (m.unstructuredOnly && p.key !== '50%') {
        row[p.key] = '= magnitude';
        continue;
      }
      const r = await runRecipe(runs, `${m.label}-${p.key}`, { checkpoint: pre.checkpoint }, [...pruneStages(m.method, { ...m.config, ...p.config }), { stage: 'evaluate', name: 'pruned' }]);
      const value = ppl(r, 'pruned');
      row[p.key] = round(value);
      cells.push({ method: m.label, pattern: p.key, perplexity: value, pruneMs: stageOf(r, 'prune').ms, summary: stageOf(r, 'prune').summary });
      log(`${m.label} ${p.key}: perplexity ${value.toFixed(3)} (dense ${dense.toFixed(3)}), prune ${(stageOf(r, 'prune').ms / 1000).toFixed(1)} s`);
    }
    rows.push(row);
  }
  return { dense, rows, cells };
}
