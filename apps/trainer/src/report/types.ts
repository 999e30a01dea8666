// The run report's input: plain JSON the trainer fills in as a run goes (so it can be saved and
// rendered again later). Everything but the run name is optional.

import { ArgumentError } from '@sparse/tensor';

export interface ReportModel {
  /** e.g. 'gpt' or 'llama'. */
  architecture: string;
  /** Total parameter count. */
  params: number;
  /** Further size fields shown in the summary (layers, dim, heads, ctx, vocab...). */
  details?: Record<string, string | number | boolean>;
}

export interface ReportStage {
  index: number;
  kind: string;
  method?: string;
  /** Wall time of the stage in milliseconds. */
  ms: number;
  /** One line on what the stage did. */
  summary?: string;
}

export interface ReportLossPoint {
  step: number;
  loss: number;
}

export interface ReportLossCurve {
  /** The stage the curve belongs to, e.g. 'pretrain' or '3 train (sr-ste)'. */
  label: string;
  points: ReportLossPoint[];
}

export interface ReportEvaluation {
  /** When it was measured, e.g. 'after pretrain', 'after prune'. */
  label: string;
  /** Which held-out data it was measured on (e.g. 'heldout', 'shifted'); changes are only computed between evaluations on the same data. */
  data?: string;
  perplexity: number;
  /** Mean cross-entropy in nats per token. */
  loss: number;
  /** Number of predicted tokens the mean is over. */
  tokens: number;
}

export interface ReportNM {
  n: number;
  m: number;
  /** Every group of m consecutive weights along the input has at most n nonzeros. */
  valid: boolean;
  /** Number of groups with more than n nonzeros. */
  violations: number;
}

export interface ReportLayer {
  name: string;
  /** [out, in] of the weight matrix. */
  shape: [number, number];
  /** Fraction of zero weights, in [0, 1]. */
  sparsity: number;
  nm?: ReportNM;
  /** Sparsity of each of up to 32 equal blocks of output rows, top to bottom (for the heatmap). */
  rowBlockSparsity?: number[];
}

export interface ReportAdapter {
  name: string;
  variant: string;
  /** Trainable parameters of the adapter. */
  trainable: number;
  /** Parameters of the base weight it adapts. */
  base: number;
}

export interface ReportFile {
  label: string;
  path: string;
  bytes: number;
  /** Size of the same content stored dense (float32), for the compression ratio. */
  denseBytes?: number;
}

export interface ReportMaskTrace {
  /** The stage, as its loss curve is labelled. */
  label: string;
  /** Sparsity of all linear layers together after each step. */
  points: { step: number; sparsity: number }[];
  /** Steps at which some mask changed. */
  updates: number;
  /** Connections made active and inactive over those updates, all layers. */
  regrown: number;
  pruned: number;
  /** Mean Sparse Architecture Divergence of an update (Zhou et al. 2021: entries whose mask bit flipped, ‖M₁ ⊕ M₂‖₀). */
  meanSAD?: number;
  /** Mean Jaccard distance of an update's kept sets, 1 − |M₁ ∩ M₂| / |M₁ ∪ M₂| over its changed layers. */
  meanJaccard?: number;
  /** Forward + backward FLOPs of the linear layers over the stage's steps: dense, and at each step's masks. */
  denseFlops: number;
  sparseFlops: number;
}

export interface ReportData {
  /** Run name. */
  name: string;
  /** ISO 8601 time the run started. */
  created?: string;
  /** tfjs backend the run used, e.g. 'cpu' or 'tensorflow'. */
  backend?: string;
  model?: ReportModel;
  /** The resolved recipe (defaults filled in), as plain JSON. */
  recipe?: unknown;
  stages?: ReportStage[];
  lossCurves?: ReportLossCurve[];
  evaluations?: ReportEvaluation[];
  layers?: ReportLayer[];
  adapters?: ReportAdapter[];
  files?: ReportFile[];
  /** How the masks evolved in each optimizing stage that trained with them. */
  maskTraces?: ReportMaskTrace[];
  /** Achieved activation density of each evaluation that ran with an activation sparsifier. */
  activations?: ReportActivationDensity[];
  /** What the sparse attention computed in each evaluation that ran with an attention stage's method. */
  attention?: ReportAttention[];
  /** The entries each train / adapt / distill stage changed and their overlap with earlier stages' (run/update-sets.ts). */
  updateSets?: ReportUpdateSet[];
  notes?: string[];
}

export interface ReportUpdateSet {
  stage: number;
  label: string;
  /** Linear-weight entries the stage changed, of `entries`; density = changed / entries. */
  changed: number;
  entries: number;
  density: number;
  /** This stage's set A against an earlier stage's B: |A ∩ B|, |A ∪ B|, IoU, o(A, B) = |A ∩ B| / |A| and o(B, A), and their random-set levels |B| / N and |A| / N. */
  overlaps: { with: string; intersection: number; union: number; entries: number; iou: number; overlap: number; reverse: number; chance: number; chanceReverse: number }[];
}

export interface ReportAttention {
  /** The evaluation it was measured in. */
  label: string;
  /** The sparse-attention method. */
  method: string;
  /** 'tiles': a block method (density = tiles computed / causal tiles); 'kv': KV pruning (K / V sparsity, cache bytes). */
  kind: 'tiles' | 'kv';
  density?: number;
  kSparsity?: number;
  vSparsity?: number;
  /** The bitmap KV cache's bytes for `positions` tokens (all layers), and the dense float32 cache's. */
  bytes?: number;
  denseBytes?: number;
  positions?: number;
  /** Per layer: density (tiles) or K / V sparsity (kv). */
  layers: { layer: number; density?: number; kSparsity?: number; vSparsity?: number }[];
}

export interface ReportActivationDensity {
  /** The evaluation it was measured in. */
  label: string;
  /** The activation-sparsity method. */
  method: string;
  /** Fraction of activations kept over all sites. */
  overall: number;
  /** Per site (a linear layer's input, or an MLP activation '<mlp>.act'). */
  sites: { site: string; role: string; block: number; density: number }[];
}

/** Most row blocks a layer's heatmap row may have. */
export const MAX_ROW_BLOCKS = 32;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(field: string, problem: string): never {
  throw new ArgumentError(`report data: ${field} ${problem}`);
}

function str(v: unknown, field: string, optional = false): void {
  if (v === undefined && optional) return;
  if (typeof v !== 'string') fail(field, `must be a string, got ${describe(v)}`);
}

// Non-finite numbers are allowed where a diverged run can produce them (loss, perplexity).
function num(v: unknown, field: string, opts: { optional?: boolean; int?: boolean; min?: number; max?: number; finite?: boolean } = {}): void {
  if (v === undefined && opts.optional) return;
  if (typeof v !== 'number') fail(field, `must be a number, got ${describe(v)}`);
  if (Number.isNaN(v) && opts.finite === false) return;
  if (opts.finite !== false && !Number.isFinite(v)) fail(field, `must be finite, got ${v}`);
  if (opts.int && !Number.isInteger(v)) fail(field, `must be an integer, got ${v}`);
  if (opts.min !== undefined && v < opts.min) fail(field, `must be >= ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) fail(field, `must be <= ${opts.max}, got ${v}`);
}

function arr(v: unknown, field: string): v is unknown[] {
  if (v === undefined) return false;
  if (!Array.isArray(v)) fail(field, `must be an array, got ${describe(v)}`);
  return true;
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (!isObject(v)) fail(field, `must be an object, got ${describe(v)}`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

/**
 * Checks that `data` has the shape of ReportData (types, ranges, array lengths), so a bad field
 * fails with its path (`layers[2].sparsity`) instead of producing a wrong report.
 */
export function validateReportData(data: unknown): asserts data is ReportData {
  const d = obj(data, 'root');
  str(d.name, 'name');
  str(d.created, 'created', true);
  str(d.backend, 'backend', true);
  if (d.model !== undefined) {
    const m = obj(d.model, 'model');
    str(m.architecture, 'model.architecture');
    num(m.params, 'model.params', { int: true, min: 0 });
    if (m.details !== undefined) {
      for (const [k, v] of Object.entries(obj(m.details, 'model.details'))) {
        if (!['string', 'number', 'boolean'].includes(typeof v)) fail(`model.details.${k}`, `must be a string, number or boolean, got ${describe(v)}`);
      }
    }
  }
  if (d.recipe !== undefined) {
    try {
      JSON.stringify(d.recipe);
    } catch (error) {
      throw new ArgumentError(`report data: recipe is not plain JSON (${(error as Error).message})`, { cause: error });
    }
  }
  if (arr(d.stages, 'stages')) {
    d.stages.forEach((s, i) => {
      const f = `stages[${i}]`;
      const o = obj(s, f);
      num(o.index, `${f}.index`, { int: true, min: 0 });
      str(o.kind, `${f}.kind`);
      str(o.method, `${f}.method`, true);
      num(o.ms, `${f}.ms`, { min: 0 });
      str(o.summary, `${f}.summary`, true);
    });
  }
  if (arr(d.lossCurves, 'lossCurves')) {
    d.lossCurves.forEach((c, i) => {
      const f = `lossCurves[${i}]`;
      const o = obj(c, f);
      str(o.label, `${f}.label`);
      if (!arr(o.points, `${f}.points`)) fail(`${f}.points`, 'is missing');
      (o.points as unknown[]).forEach((p, j) => {
        const po = obj(p, `${f}.points[${j}]`);
        num(po.step, `${f}.points[${j}].step`);
        num(po.loss, `${f}.points[${j}].loss`, { finite: false });
      });
    });
  }
  if (arr(d.evaluations, 'evaluations')) {
    d.evaluations.forEach((e, i) => {
      const f = `evaluations[${i}]`;
      const o = obj(e, f);
      str(o.label, `${f}.label`);
      str(o.data, `${f}.data`, true);
      num(o.perplexity, `${f}.perplexity`, { finite: false });
      num(o.loss, `${f}.loss`, { finite: false });
      num(o.tokens, `${f}.tokens`, { int: true, min: 0 });
    });
  }
  if (arr(d.layers, 'layers')) {
    d.layers.forEach((l, i) => {
      const o = obj(l, `layers[${i}]`);
      str(o.name, `layers[${i}].name`);
      const f = `layers[${i}] (${o.name as string})`;
      if (!Array.isArray(o.shape) || o.shape.length !== 2) fail(`${f}.shape`, `must be [out, in], got ${JSON.stringify(o.shape)}`);
      num(o.shape[0], `${f}.shape[0]`, { int: true, min: 1 });
      num(o.shape[1], `${f}.shape[1]`, { int: true, min: 1 });
      num(o.sparsity, `${f}.sparsity`, { min: 0, max: 1 });
      if (o.nm !== undefined) {
        const nm = obj(o.nm, `${f}.nm`);
        num(nm.m, `${f}.nm.m`, { int: true, min: 1 });
        num(nm.n, `${f}.nm.n`, { int: true, min: 0, max: nm.m as number });
        if (typeof nm.valid !== 'boolean') fail(`${f}.nm.valid`, `must be a boolean, got ${describe(nm.valid)}`);
        num(nm.violations, `${f}.nm.violations`, { int: true, min: 0 });
        if (nm.valid !== (nm.violations === 0)) fail(`${f}.nm`, `says valid=${nm.valid} with ${nm.violations} violations`);
      }
      if (arr(o.rowBlockSparsity, `${f}.rowBlockSparsity`)) {
        const blocks = o.rowBlockSparsity as unknown[];
        if (blocks.length < 1 || blocks.length > MAX_ROW_BLOCKS) fail(`${f}.rowBlockSparsity`, `must have 1 to ${MAX_ROW_BLOCKS} blocks, got ${blocks.length}`);
        if (blocks.length > o.shape[0]) fail(`${f}.rowBlockSparsity`, `has ${blocks.length} blocks for ${o.shape[0]} rows`);
        blocks.forEach((b, j) => num(b, `${f}.rowBlockSparsity[${j}]`, { min: 0, max: 1 }));
      }
    });
  }
  if (arr(d.adapters, 'adapters')) {
    d.adapters.forEach((a, i) => {
      const f = `adapters[${i}]`;
      const o = obj(a, f);
      str(o.name, `${f}.name`);
      str(o.variant, `${f}.variant`);
      num(o.trainable, `${f}.trainable`, { int: true, min: 0 });
      num(o.base, `${f}.base`, { int: true, min: 0 });
    });
  }
  if (arr(d.files, 'files')) {
    d.files.forEach((x, i) => {
      const f = `files[${i}]`;
      const o = obj(x, f);
      str(o.label, `${f}.label`);
      str(o.path, `${f}.path`);
      num(o.bytes, `${f}.bytes`, { int: true, min: 0 });
      num(o.denseBytes, `${f}.denseBytes`, { int: true, min: 0, optional: true });
    });
  }
  if (arr(d.activations, 'activations')) {
    d.activations.forEach((x, i) => {
      const f = `activations[${i}]`;
      const o = obj(x, f);
      str(o.label, `${f}.label`);
      str(o.method, `${f}.method`);
      num(o.overall, `${f}.overall`, { min: 0, max: 1 });
      if (!arr(o.sites, `${f}.sites`)) fail(`${f}.sites`, 'is missing');
      (o.sites as unknown[]).forEach((p, j) => {
        const so = obj(p, `${f}.sites[${j}]`);
        str(so.site, `${f}.sites[${j}].site`);
        str(so.role, `${f}.sites[${j}].role`);
        num(so.block, `${f}.sites[${j}].block`, { int: true, min: -1 });
        num(so.density, `${f}.sites[${j}].density`, { min: 0, max: 1 });
      });
    });
  }
  if (arr(d.updateSets, 'updateSets')) {
    d.updateSets.forEach((x, i) => {
      const f = `updateSets[${i}]`;
      const o = obj(x, f);
      num(o.stage, `${f}.stage`, { int: true, min: 0 });
      str(o.label, `${f}.label`);
      num(o.changed, `${f}.changed`, { int: true, min: 0 });
      num(o.entries, `${f}.entries`, { int: true, min: 0 });
      num(o.density, `${f}.density`, { min: 0, max: 1 });
      if (!arr(o.overlaps, `${f}.overlaps`)) fail(`${f}.overlaps`, 'is missing');
      (o.overlaps as unknown[]).forEach((p, j) => {
        const g = `${f}.overlaps[${j}]`;
        const po = obj(p, g);
        str(po.with, `${g}.with`);
        for (const k of ['intersection', 'union', 'entries'] as const) num(po[k], `${g}.${k}`, { int: true, min: 0 });
        for (const k of ['iou', 'overlap', 'reverse', 'chance', 'chanceReverse'] as const) num(po[k], `${g}.${k}`, { min: 0, max: 1 });
      });
    });
  }
  if (arr(d.attention, 'attention')) {
    d.attention.forEach((x, i) => {
      const f = `attention[${i}]`;
      const o = obj(x, f);
      str(o.label, `${f}.label`);
      str(o.method, `${f}.method`);
      if (o.kind !== 'tiles' && o.kind !== 'kv') fail(`${f}.kind`, `must be 'tiles' or 'kv', got ${describe(o.kind)}`);
      for (const k of ['density', 'kSparsity', 'vSparsity'] as const) num(o[k], `${f}.${k}`, { min: 0, max: 1, optional: true });
      for (const k of ['bytes', 'denseBytes', 'positions'] as const) num(o[k], `${f}.${k}`, { int: true, min: 0, optional: true });
      if (!arr(o.layers, `${f}.layers`)) fail(`${f}.layers`, 'is missing');
      (o.layers as unknown[]).forEach((p, j) => {
        const lo = obj(p, `${f}.layers[${j}]`);
        num(lo.layer, `${f}.layers[${j}].layer`, { int: true, min: 0 });
        for (const k of ['density', 'kSparsity', 'vSparsity'] as const) num(lo[k], `${f}.layers[${j}].${k}`, { min: 0, max: 1, optional: true });
      });
    });
  }
  if (arr(d.maskTraces, 'maskTraces')) {
    d.maskTraces.forEach((x, i) => {
      const f = `maskTraces[${i}]`;
      const o = obj(x, f);
      str(o.label, `${f}.label`);
      if (!arr(o.points, `${f}.points`)) fail(`${f}.points`, 'is missing');
      (o.points as unknown[]).forEach((p, j) => {
        const po = obj(p, `${f}.points[${j}]`);
        num(po.step, `${f}.points[${j}].step`);
        num(po.sparsity, `${f}.points[${j}].sparsity`, { min: 0, max: 1 });
      });
      num(o.updates, `${f}.updates`, { int: true, min: 0 });
      num(o.regrown, `${f}.regrown`, { int: true, min: 0 });
      num(o.pruned, `${f}.pruned`, { int: true, min: 0 });
      num(o.meanSAD, `${f}.meanSAD`, { min: 0, optional: true });
      num(o.meanJaccard, `${f}.meanJaccard`, { min: 0, max: 1, optional: true });
      num(o.denseFlops, `${f}.denseFlops`, { min: 0 });
      num(o.sparseFlops, `${f}.sparseFlops`, { min: 0 });
      if ((o.sparseFlops as number) > (o.denseFlops as number)) fail(`${f}.sparseFlops`, `(${o.sparseFlops}) exceeds denseFlops (${o.denseFlops})`);
    });
  }
  if (arr(d.notes, 'notes')) d.notes.forEach((n, i) => str(n, `notes[${i}]`));
}
