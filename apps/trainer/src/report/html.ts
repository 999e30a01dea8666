// The run report as one self-contained HTML file: inline CSS and SVG, no scripts, no network.

import { formatDuration } from '../cli/progress.js';
import { barChart, heatmap, linePlot } from './plots.js';
import type { Scene } from './scene.js';
import { escapeXml as esc, sceneToSVG } from './svg.js';
import { type ReportData, type ReportEvaluation, type ReportLayer, validateReportData } from './types.js';

export interface ReportPlot {
  /** File stem of the PNG copy (plots/<name>.png). */
  name: 'perplexity' | 'loss' | 'masks' | 'sparsity' | 'files';
  scene: Scene;
}

/** Groups digits in threes: 1234567 -> '1,234,567'. */
export function formatInt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const s = String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? `-${s}` : s;
}

/** Four significant digits in fixed notation (12.3456 -> '12.35', 1234.5 -> '1235'); '∞' and 'NaN' kept. */
export function formatNumber(x: number, significant = 4): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  if (x === 0) return '0';
  const digits = Math.min(8, Math.max(0, significant - 1 - Math.floor(Math.log10(Math.abs(x)))));
  return x.toFixed(digits);
}

export function formatPercent(fraction: number, digits = 1): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(digits)}%` : 'n/a';
}

/** Binary-prefixed size: 1536 -> '1.50 KiB'. */
const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < BYTE_UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} B` : `${v.toFixed(2)} ${BYTE_UNITS[u]}`;
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatDuration(ms);
}

function signedPercent(from: number, to: number): string {
  if (!Number.isFinite(from) || !Number.isFinite(to) || from === 0) return '';
  const d = ((to - from) / from) * 100;
  return `${d >= 0 ? '+' : ''}${d.toFixed(1)}%`;
}

const blocksOf = (l: ReportLayer) => l.rowBlockSparsity ?? [l.sparsity];

/** Two evaluations measured on the same held-out data (evaluations without a data label count as one data set). */
const sameData = (a: ReportEvaluation, b: ReportEvaluation) => (a.data ?? '') === (b.data ?? '');

/**
 * Where each stage's steps start on one global step axis: each curve (in run order) is shifted so
 * its first step comes right after the previous curve's last, rather than every stage restarting at 0.
 */
export function stepOffsets(curves: readonly { label: string; points: readonly { step: number }[] }[]): Map<string, number> {
  const offsets = new Map<string, number>();
  let end: number | undefined;
  for (const c of curves) {
    if (c.points.length === 0 || offsets.has(c.label)) continue;
    const steps = c.points.map((p) => p.step);
    const first = Math.min(...steps);
    const offset = end === undefined ? 0 : end + 1 - first;
    offsets.set(c.label, offset);
    end = offset + Math.max(...steps);
  }
  return offsets;
}

/** The plots of a report, as scenes; only those the data has anything for. */
export function reportPlots(data: ReportData): ReportPlot[] {
  const plots: ReportPlot[] = [];
  const evals = data.evaluations ?? [];
  if (evals.length > 0) {
    plots.push({
      name: 'perplexity',
      scene: barChart(
        evals.map((e) => e.label),
        [{ label: 'perplexity', values: evals.map((e) => e.perplexity) }],
        { title: 'Held-out perplexity', valueLabel: 'perplexity (lower is better)', format: (v) => formatNumber(v) },
      ),
    });
  }
  const curves = (data.lossCurves ?? []).filter((c) => c.points.length > 0);
  const offsets = stepOffsets(curves);
  if (curves.length > 0) {
    const losses = curves.flatMap((c) => c.points.map((p) => p.loss)).filter((v) => Number.isFinite(v));
    // a log axis only helps when the loss falls by an order of magnitude
    const logY = losses.length > 0 && Math.min(...losses) > 0 && Math.max(...losses) / Math.min(...losses) >= 10;
    plots.push({
      name: 'loss',
      scene: linePlot(
        curves.map((c) => ({ label: c.label, points: c.points.map((p) => ({ x: offsets.get(c.label)! + p.step, y: p.loss })) })),
        { title: 'Training loss', xLabel: curves.length > 1 ? 'step (all stages in order)' : 'step', yLabel: 'loss (nats/token)', logY },
      ),
    });
  }
  const traces = (data.maskTraces ?? []).filter((t) => t.points.length > 0);
  if (traces.length > 0) {
    plots.push({
      name: 'masks',
      scene: linePlot(
        traces.map((t) => ({ label: t.label, points: t.points.map((p) => ({ x: (offsets.get(t.label) ?? 0) + p.step, y: p.sparsity * 100 })) })),
        { title: 'Linear-layer sparsity during training', xLabel: offsets.size > 1 ? 'step (all stages in order)' : 'step', yLabel: 'sparsity (%)' },
      ),
    });
  }
  const layers = data.layers ?? [];
  if (layers.length > 0) {
    plots.push({
      name: 'sparsity',
      scene: heatmap(
        layers.map((l) => ({ label: l.name, values: blocksOf(l) })),
        { title: 'Sparsity per layer', xLabel: 'blocks of output rows, top to bottom' },
      ),
    });
  }
  const files = (data.files ?? []).filter((f) => f.denseBytes !== undefined);
  if (files.length > 0) {
    // one binary unit for the whole axis, so its ticks are round numbers of KiB/MiB/...
    const largest = Math.max(...files.map((f) => Math.max(f.bytes, f.denseBytes ?? 0)));
    const unit = Math.max(0, Math.min(BYTE_UNITS.length - 1, Math.floor(Math.log2(Math.max(1, largest)) / 10)));
    const inUnit = (b: number) => b / 1024 ** unit;
    plots.push({
      name: 'files',
      scene: barChart(
        files.map((f) => f.label),
        [
          { label: 'file', values: files.map((f) => inUnit(f.bytes)) },
          { label: 'dense', values: files.map((f) => (f.denseBytes === undefined ? null : inUnit(f.denseBytes))) },
        ],
        { title: 'File size vs dense', valueLabel: BYTE_UNITS[unit], format: (v) => formatBytes(Math.round(v * 1024 ** unit)) },
      ),
    });
  }
  return plots;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0 auto;max-width:1000px;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin:0 0 12px}.empty{color:#777;font-style:italic}
table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}tr.total td{font-weight:600;background:#fafafa}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:10px;overflow:auto;font-size:12px}
figure{margin:8px 0 16px}svg{max-width:100%;height:auto}nav a{margin-right:10px}
`;

type Cell = string | { html: string; num?: boolean; cls?: string };

function table(head: Cell[], rows: Cell[][], total?: Cell[]): string {
  const cell = (tag: 'th' | 'td', c: Cell) => {
    if (typeof c === 'string') return `<${tag}>${esc(c)}</${tag}>`;
    const cls = [c.num ? 'num' : '', c.cls ?? ''].filter(Boolean).join(' ');
    return `<${tag}${cls ? ` class="${cls}"` : ''}>${c.html}</${tag}>`;
  };
  const tr = (cells: Cell[], tag: 'th' | 'td', cls = '') => `<tr${cls ? ` class="${cls}"` : ''}>${cells.map((c) => cell(tag, c)).join('')}</tr>`;
  return `<table><thead>${tr(head, 'th')}</thead><tbody>${rows.map((r) => tr(r, 'td')).join('')}${total ? tr(total, 'td', 'total') : ''}</tbody></table>`;
}

const num = (s: string): Cell => ({ html: esc(s), num: true });

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>${body}</section>`;
}

const empty = (what: string) => `<p class="empty">${esc(what)}</p>`;
const figure = (plot: ReportPlot | undefined) => (plot ? `<figure>${sceneToSVG(plot.scene)}</figure>` : '');

/** Renders the report. Throws ArgumentError naming the field when `data` is malformed. */
export function renderReportHTML(data: ReportData): string {
  validateReportData(data);
  const plots = new Map(reportPlots(data).map((p) => [p.name, p]));
  const evals = data.evaluations ?? [];
  const stages = data.stages ?? [];
  const layers = data.layers ?? [];
  const adapters = data.adapters ?? [];
  const files = data.files ?? [];
  const parts: string[] = [];

  // Summary
  const summary: [string, string][] = [['Run', data.name]];
  if (data.created) summary.push(['Created', data.created]);
  if (data.backend) summary.push(['Backend', data.backend]);
  if (data.model) {
    summary.push(['Model', data.model.architecture], ['Parameters', formatInt(data.model.params)]);
    // the architecture is the Model row already
    for (const [k, v] of Object.entries(data.model.details ?? {})) if (k !== 'architecture') summary.push([k, typeof v === 'number' ? formatInt(v) : String(v)]);
  }
  if (stages.length > 0) summary.push(['Stages', String(stages.length)], ['Total time', formatMs(stages.reduce((s, x) => s + x.ms, 0))]);
  if (evals.length > 0) {
    const last = evals[evals.length - 1];
    // compare like with like: the first evaluation on the same data as the last one
    const first = evals.find((e) => sameData(e, last));
    summary.push([`Perplexity (${last.label})`, formatNumber(last.perplexity)]);
    if (first !== undefined && first !== last) summary.push([`Perplexity change since ${first.label}`, signedPercent(first.perplexity, last.perplexity) || 'n/a']);
  }
  if (layers.length > 0) summary.push(['Overall sparsity (linear layers only; embeddings, norms and biases not counted)', formatPercent(overallSparsity(layers))]);
  let summaryBody = `<table><tbody>${summary.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</tbody></table>`;
  summaryBody +=
    stages.length > 0
      ? table(
          ['#', 'Stage', 'Method', { html: 'Time', num: true }, 'Summary'],
          stages.map((s) => [num(String(s.index)), s.kind, s.method ?? '', num(formatMs(s.ms)), s.summary ?? '']),
        )
      : empty('No stages recorded.');
  parts.push(section('summary', 'Summary', summaryBody));

  // Perplexity
  parts.push(
    section(
      'perplexity',
      'Perplexity per stage',
      evals.length > 0
        ? table(
            ['Measured', { html: 'Perplexity', num: true }, { html: 'Loss (nats/token)', num: true }, { html: 'Tokens', num: true }, { html: 'Change vs previous on the same data', num: true }],
            evals.map((e, i) => {
              const previous = evals.slice(0, i).reverse().find((p) => sameData(p, e));
              return [e.label, num(formatNumber(e.perplexity)), num(formatNumber(e.loss)), num(formatInt(e.tokens)), num(previous ? signedPercent(previous.perplexity, e.perplexity) : '')];
            }),
          ) + figure(plots.get('perplexity'))
        : empty('No evaluations recorded.'),
    ),
  );

  // Loss curves
  parts.push(section('loss', 'Loss curves', plots.has('loss') ? figure(plots.get('loss')) : empty('No training steps recorded.')));

  // Sparsity per layer
  if (layers.length > 0) {
    const totalParams = layers.reduce((s, l) => s + l.shape[0] * l.shape[1], 0);
    const totalNonzero = layers.reduce((s, l) => s + nonzeros(l), 0);
    parts.push(
      section(
        'sparsity',
        'Sparsity per layer',
        table(
          ['Layer', { html: 'Shape [out, in]', num: true }, { html: 'Weights', num: true }, { html: 'Nonzero', num: true }, { html: 'Sparsity', num: true }],
          layers.map((l) => [l.name, num(`${l.shape[0]} × ${l.shape[1]}`), num(formatInt(l.shape[0] * l.shape[1])), num(formatInt(nonzeros(l))), num(formatPercent(l.sparsity))]),
          ['All layers', '', num(formatInt(totalParams)), num(formatInt(totalNonzero)), num(formatPercent(overallSparsity(layers)))],
        ) + figure(plots.get('sparsity')),
      ),
    );
  } else parts.push(section('sparsity', 'Sparsity per layer', empty('No layer statistics recorded.')));

  // Update sets: which entries each fine-tuning stage changed, and their overlaps
  const updates = data.updateSets ?? [];
  if (updates.length > 0) {
    const pairs = updates.flatMap((u) => u.overlaps.map((o) => ({ label: u.label, ...o })));
    parts.push(
      section(
        'updates',
        'Update sparsity',
        table(
          ['Stage', { html: 'Entries changed', num: true }, { html: 'Of', num: true }, { html: 'Update density', num: true }],
          updates.map((u) => [u.label, num(formatInt(u.changed)), num(formatInt(u.entries)), num(formatPercent(u.density, 2))]),
        ) +
          (pairs.length > 0
            ? table(
                ['Stage A', 'Stage B', { html: '|A ∩ B|', num: true }, { html: 'IoU', num: true }, { html: 'o(A, B)', num: true }, { html: 'random', num: true }, { html: 'o(B, A)', num: true }, { html: 'random', num: true }],
                pairs.map((p) => [p.label, p.with, num(formatInt(p.intersection)), num(formatNumber(p.iou, 3)), num(formatPercent(p.overlap)), num(formatPercent(p.chance)), num(formatPercent(p.reverse)), num(formatPercent(p.chanceReverse))]),
              )
            : '') +
          '<p>The linear-weight entries each train, adapt or distill stage changed (its float32 value differs from the stage start), as Mukherjee et al. 2025 measure update sparsity. o(A, B) = |A ∩ B| / |A| is the share of A\'s entries that B also changed; "random" is what a random set of A\'s size would share, |B| / N. An adapter that is not merged changes no weights.</p>',
      ),
    );
  }

  // Masks during training
  const traces = data.maskTraces ?? [];
  if (traces.length > 0) {
    parts.push(
      section(
        'masks',
        'Masks during training',
        table(
          ['Stage', { html: 'Final sparsity', num: true }, { html: 'Mask updates', num: true }, { html: 'Regrown', num: true }, { html: 'Pruned', num: true }, { html: 'Mean SAD', num: true }, { html: 'Mean 1 − IoU', num: true }, { html: 'Linear FLOPs, sparse / dense', num: true }],
          traces.map((t) => [
            t.label,
            num(t.points.length > 0 ? formatPercent(t.points[t.points.length - 1].sparsity) : ''),
            num(formatInt(t.updates)),
            num(formatInt(t.regrown)),
            num(formatInt(t.pruned)),
            num(t.meanSAD !== undefined ? formatNumber(t.meanSAD, 1) : ''),
            num(t.meanJaccard !== undefined ? formatNumber(t.meanJaccard, 3) : ''),
            num(t.denseFlops > 0 ? formatPercent(t.sparseFlops / t.denseFlops) : ''),
          ]),
        ) +
          '<p>SAD (Sparse Architecture Divergence, Zhou et al. 2021) of an update is the number of entries whose mask bit flipped, ‖M₁ ⊕ M₂‖₀ = regrown + pruned; 1 − IoU is the Jaccard distance 1 − |M₁ ∩ M₂| / |M₁ ∪ M₂| of the kept sets before and after it. FLOPs count the forward and backward passes of the linear layers (6 per kept weight per token).</p>' +
          figure(plots.get('masks')),
      ),
    );
  }

  // Sparse attention
  const attn = data.attention ?? [];
  if (attn.length > 0) {
    parts.push(
      section(
        'attention',
        'Sparse attention',
        table(
          ['Evaluation', 'Method', { html: 'Causal tiles computed', num: true }, { html: 'K sparsity', num: true }, { html: 'V sparsity', num: true }, { html: 'KV cache bytes (bitmap / dense)', num: true }],
          attn.map((a) => [
            a.label,
            a.method,
            num(a.density === undefined ? '' : formatPercent(a.density)),
            num(a.kSparsity === undefined ? '' : formatPercent(a.kSparsity)),
            num(a.vSparsity === undefined ? '' : formatPercent(a.vSparsity)),
            num(a.bytes === undefined || a.denseBytes === undefined ? '' : `${formatInt(a.bytes)} / ${formatInt(a.denseBytes)}`),
          ]),
        ) +
          '<p>Block methods: attention tiles computed over the tiles of the causal pattern, all heads and layers, on the held-out data. KV pruning: the share of K and V entries pruned, and the bytes of the bitmap KV cache for one window of the evaluated context against the dense float32 cache.</p>' +
          table(
            ['Layer', ...attn.map((a) => ({ html: esc(a.label), num: true }))],
            [...new Set(attn.flatMap((a) => a.layers.map((l) => l.layer)))].sort((x, y) => x - y).map((layer) => [
              num(formatInt(layer)),
              ...attn.map((a) => {
                const l = a.layers.find((x) => x.layer === layer);
                if (l === undefined) return num('');
                return num(l.density !== undefined ? formatPercent(l.density) : `K ${formatPercent(l.kSparsity ?? 0)}, V ${formatPercent(l.vSparsity ?? 0)}`);
              }),
            ]),
          ),
      ),
    );
  }

  // Activation sparsity
  const acts = data.activations ?? [];
  if (acts.length > 0) {
    parts.push(
      section(
        'activations',
        'Activation sparsity',
        table(
          ['Evaluation', 'Method', { html: 'Activations kept', num: true }, { html: 'Sites', num: true }],
          acts.map((a) => [a.label, a.method, num(formatPercent(a.overall)), num(formatInt(a.sites.length))]),
        ) +
          '<p>Fraction of activations the sparsifier kept on the held-out data, per site: a linear layer\'s input (by weight name) or an MLP activation (<code>.act</code>).</p>' +
          table(
            ['Site', 'Role', { html: 'Block', num: true }, ...acts.map((a) => ({ html: esc(a.label), num: true }))],
            [...new Set(acts.flatMap((a) => a.sites.map((s) => s.site)))].map((site) => {
              const first = acts.flatMap((a) => a.sites).find((s) => s.site === site)!;
              return [site, first.role, num(formatInt(first.block)), ...acts.map((a) => {
                const d = a.sites.find((s) => s.site === site)?.density;
                return num(d === undefined ? '' : formatPercent(d));
              })];
            }),
          ),
      ),
    );
  }

  // N:M validity
  const nmLayers = layers.filter((l) => l.nm);
  if (nmLayers.length > 0) {
    const valid = nmLayers.filter((l) => l.nm?.valid).length;
    parts.push(
      section(
        'nm',
        'N:M validity',
        `<p>${valid} of ${nmLayers.length} layers satisfy their N:M pattern.</p>` +
          table(
            ['Layer', 'Pattern', 'Valid', { html: 'Violating groups', num: true }],
            nmLayers.map((l) => {
              const nm = l.nm as NonNullable<ReportLayer['nm']>;
              return [l.name, `${nm.n}:${nm.m}`, nm.valid ? { html: '✓ valid', cls: 'ok' } : { html: '✗ invalid', cls: 'bad' }, num(formatInt(nm.violations))];
            }),
          ),
      ),
    );
  } else parts.push(section('nm', 'N:M validity', empty('No layer has an N:M pattern in this run.')));

  // Adapters
  if (adapters.length > 0) {
    const trainable = adapters.reduce((s, a) => s + a.trainable, 0);
    const base = adapters.reduce((s, a) => s + a.base, 0);
    const pct = (t: number, b: number) => (b > 0 ? formatPercent(t / b, 2) : 'n/a');
    parts.push(
      section(
        'adapters',
        'Adapters',
        table(
          ['Adapter', 'Variant', { html: 'Trainable', num: true }, { html: 'Base', num: true }, { html: '% of base', num: true }],
          adapters.map((a) => [a.name, a.variant, num(formatInt(a.trainable)), num(formatInt(a.base)), num(pct(a.trainable, a.base))]),
          ['All adapters', '', num(formatInt(trainable)), num(formatInt(base)), num(pct(trainable, base))],
        ) + (data.model && data.model.params > 0 ? `<p>Trainable adapter parameters are ${formatPercent(trainable / data.model.params, 2)} of the model's ${formatInt(data.model.params)}.</p>` : ''),
      ),
    );
  } else parts.push(section('adapters', 'Adapters', empty('No adapters in this run.')));

  // Files
  parts.push(
    section(
      'files',
      'Files',
      files.length > 0
        ? table(
            ['File', 'Path', { html: 'Bytes', num: true }, { html: 'Size', num: true }, { html: 'Dense bytes', num: true }, { html: '% of dense', num: true }, { html: 'Compression', num: true }],
            files.map((f) => {
              const dense = f.denseBytes;
              const has = dense !== undefined && dense > 0 && f.bytes > 0;
              return [
                f.label,
                { html: `<code>${esc(f.path)}</code>` },
                num(formatInt(f.bytes)),
                num(formatBytes(f.bytes)),
                num(dense !== undefined ? formatInt(dense) : ''),
                num(has ? formatPercent(f.bytes / dense) : ''),
                num(has ? `${(dense / f.bytes).toFixed(2)}×` : ''),
              ];
            }),
          ) + figure(plots.get('files'))
        : empty('No files written.'),
    ),
  );

  // Recipe
  parts.push(
    section('recipe', 'Resolved recipe', data.recipe !== undefined ? `<pre>${esc(JSON.stringify(data.recipe, null, 2) ?? String(data.recipe))}</pre>` : empty('No recipe recorded.')),
  );

  // Notes
  const notes = data.notes ?? [];
  parts.push(section('notes', 'Notes', notes.length > 0 ? `<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : empty('No notes.')));

  const nav = parts.map((p) => /<section id="([^"]+)"><h2>([^<]*)<\/h2>/.exec(p)).map((m) => (m ? `<a href="#${m[1]}">${m[2]}</a>` : '')).join('');
  const sub = [data.created, data.backend && `backend ${data.backend}`, data.model && `${data.model.architecture}, ${formatInt(data.model.params)} parameters`].filter(Boolean).join(' · ');
  return (
    `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${esc(`sparse-train report: ${data.name}`)}</title><style>${CSS}</style></head>\n<body>` +
    `<header><h1>${esc(data.name)}</h1><p class="sub">${esc(sub)}</p><nav>${nav}</nav></header>\n<main>${parts.join('\n')}</main></body></html>\n`
  );
}

function nonzeros(l: ReportLayer): number {
  return Math.round(l.shape[0] * l.shape[1] * (1 - l.sparsity));
}

/** Fraction of zeros over all layers' weights together. */
function overallSparsity(layers: ReportLayer[]): number {
  const total = layers.reduce((s, l) => s + l.shape[0] * l.shape[1], 0);
  return total > 0 ? layers.reduce((s, l) => s + l.shape[0] * l.shape[1] * l.sparsity, 0) / total : Number.NaN;
}
