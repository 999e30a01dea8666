// Plot layout: line plots, horizontal bar charts and heatmaps as scenes (see scene.ts).

import { ArgumentError } from '@sparse/tensor';
import {
  type Axis,
  type Scene,
  type Shape,
  PALETTE,
  axisFraction,
  formatTick,
  linearAxis,
  logAxis,
  scaleColor,
  textWidth,
  ellipsize,
  charsThatFit,
  truncateMiddle,
} from './scene.js';

const INK = '#222222';
const MUTED = '#666666';
const GRID = '#e4e4e4';
const TICK = 11;
const TITLE = 14;
const MAX_LABEL = 28;

export interface LineSeries {
  label: string;
  points: { x: number; y: number }[];
}

export interface LinePlotOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Logarithmic y axis; points with y <= 0 are left out. */
  logY?: boolean;
  width?: number;
  height?: number;
}

export interface BarSeries {
  label: string;
  /** One value per category; null or a non-finite value leaves the bar out ('n/a'). */
  values: (number | null)[];
}

export interface BarChartOptions {
  title?: string;
  valueLabel?: string;
  width?: number;
  /** Label printed at the end of each bar (default: formatTick). */
  format?: (v: number) => string;
}

export interface HeatmapRow {
  label: string;
  /** Values in [0, 1], one per column; rows may have different column counts (each spans the full width). */
  values: number[];
}

export interface HeatmapOptions {
  title?: string;
  xLabel?: string;
  width?: number;
  /** Label of the colour scale's ends, e.g. v => `${v * 100}%`. */
  format?: (v: number) => string;
}

function text(x: number, y: number, s: string, opts: { size?: number; anchor?: 'start' | 'middle' | 'end'; fill?: string; bold?: boolean } = {}): Shape {
  return { kind: 'text', x, y, text: s, size: opts.size ?? TICK, anchor: opts.anchor ?? 'start', fill: opts.fill ?? INK, bold: opts.bold };
}

function line(x0: number, y0: number, x1: number, y1: number, stroke: string, width = 1): Shape {
  return { kind: 'polyline', points: [[x0, y0], [x1, y1]], stroke, width };
}

function emptyScene(width: number, height: number, title: string, message: string): Scene {
  return {
    width,
    height,
    background: '#ffffff',
    label: `${title}: ${message}`,
    shapes: [text(12, 22, title, { size: TITLE, bold: true }), text(width / 2, height / 2, message, { anchor: 'middle', fill: MUTED })],
  };
}

function checkSize(name: string, v: number, min: number): void {
  if (!Number.isFinite(v) || v < min) throw new ArgumentError(`${name} must be a number >= ${min}, got ${v}`);
}

/** Several series against a shared x axis, with ticks, grid, legend and an optional log y axis. */
export function linePlot(series: LineSeries[], options: LinePlotOptions = {}): Scene {
  const width = options.width ?? 720;
  const height = options.height ?? 360;
  checkSize('line plot width', width, 200);
  checkSize('line plot height', height, 120);
  const title = options.title ?? '';
  const logY = options.logY ?? false;
  // Each series splits into runs of drawable points; a dropped point (NaN, or <= 0 on a log axis) breaks the line.
  const runs = series.map((s) => {
    const out: { x: number; y: number }[][] = [[]];
    for (const p of s.points) {
      if (Number.isFinite(p.x) && Number.isFinite(p.y) && (!logY || p.y > 0)) out[out.length - 1].push(p);
      else if (out[out.length - 1].length > 0) out.push([]);
    }
    return out.filter((r) => r.length > 0);
  });
  const all = runs.flat(2);
  if (all.length === 0) return emptyScene(width, height, title, 'no data');
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const xAxis = linearAxis(Math.min(...xs), Math.max(...xs), 6);
  const yLo = Math.min(...ys);
  const yHi = Math.max(...ys);
  const yAxis: Axis = logY ? logAxis(yLo, yHi === yLo ? yLo * 1.5 : yHi, 5) : linearAxis(yLo, yHi, 5);

  const yTickLabels = yAxis.ticks.map(formatTick);
  // legend labels take at most about a third of the width; longer ones lose their middle
  const legend = series.map((s) => truncateMiddle(s.label, Math.min(MAX_LABEL, charsThatFit(width * 0.35, TICK))));
  const legendWidth = series.length > 0 ? Math.max(...legend.map((l) => textWidth(l, TICK))) + 34 : 0;
  const left = 16 + Math.max(...yTickLabels.map((l) => textWidth(l, TICK)));
  const top = 48;
  const right = width - 16 - legendWidth;
  const bottom = height - (options.xLabel ? 42 : 26);
  if (right - left < 60) throw new ArgumentError(`line plot width ${width} leaves no room for the plot next to the legend`);
  const px = (x: number) => left + axisFraction(xAxis, x) * (right - left);
  const py = (y: number) => bottom - axisFraction(yAxis, y) * (bottom - top);

  const shapes: Shape[] = [];
  if (title) shapes.push(text(12, 22, ellipsize(title, width - 24, TITLE), { size: TITLE, bold: true }));
  if (options.yLabel) shapes.push(text(12, top - 12, ellipsize(options.yLabel + (logY ? ' (log scale)' : ''), width - 24, TICK), { fill: MUTED }));
  yAxis.ticks.forEach((t, i) => {
    const y = py(t);
    shapes.push(line(left, y, right, y, GRID));
    shapes.push(text(left - 6, y + 4, yTickLabels[i], { anchor: 'end', fill: MUTED }));
  });
  for (const t of xAxis.ticks) {
    const x = px(t);
    shapes.push(line(x, bottom, x, bottom + 4, INK));
    shapes.push(text(x, bottom + 16, formatTick(t), { anchor: 'middle', fill: MUTED }));
  }
  shapes.push(line(left, top, left, bottom, INK), line(left, bottom, right, bottom, INK));
  if (options.xLabel) shapes.push(text((left + right) / 2, height - 8, ellipsize(options.xLabel, right - left, TICK), { anchor: 'middle', fill: MUTED }));

  runs.forEach((rs, i) => {
    const color = PALETTE[i % PALETTE.length];
    for (const r of rs) {
      if (r.length === 1) shapes.push({ kind: 'rect', x: px(r[0].x) - 2, y: py(r[0].y) - 2, w: 4, h: 4, fill: color });
      else shapes.push({ kind: 'polyline', points: decimate(r.map((p) => [px(p.x), py(p.y)])), stroke: color, width: 2 });
    }
  });
  // as many legend rows as fit beside the plot; the last one says how many more there are
  const fit = Math.max(1, Math.floor((bottom - top) / 18));
  if (legend.length > fit) legend.splice(fit - 1, legend.length, `+${legend.length - fit + 1} more`);
  legend.forEach((l, i) => {
    const y = top + 6 + i * 18;
    const more = l.startsWith('+') && i === legend.length - 1 && legend.length < series.length;
    if (!more) shapes.push({ kind: 'rect', x: right + 14, y: y - 2, w: 14, h: 4, fill: PALETTE[i % PALETTE.length], className: 'swatch' });
    shapes.push(text(right + 32, y + 4, l, more ? { fill: MUTED } : {}));
  });
  return { width, height, background: '#ffffff', label: title || 'line plot', shapes };
}

/**
 * Thins a long pixel path: within each pixel column keeps the first, lowest, highest and last
 * point, so spikes survive and the drawing looks the same with far fewer points.
 */
export function decimate(points: [number, number][]): [number, number][] {
  if (points.length <= 2000) return points;
  const out: [number, number][] = [];
  let i = 0;
  while (i < points.length) {
    const col = Math.floor(points[i][0]);
    let j = i;
    let lo = i;
    let hi = i;
    while (j + 1 < points.length && Math.floor(points[j + 1][0]) === col) {
      j++;
      if (points[j][1] < points[lo][1]) lo = j;
      if (points[j][1] > points[hi][1]) hi = j;
    }
    // keep the column's points in their original order
    for (const k of [...new Set([i, lo, hi, j])].sort((a, b) => a - b)) out.push(points[k]);
    i = j + 1;
  }
  return out;
}

/** Horizontal grouped bars: one row per category, one bar per series, value printed at the bar end. */
export function barChart(categories: string[], series: BarSeries[], options: BarChartOptions = {}): Scene {
  const width = options.width ?? 720;
  checkSize('bar chart width', width, 200);
  const title = options.title ?? '';
  const format = options.format ?? formatTick;
  series.forEach((s) => {
    if (s.values.length !== categories.length) {
      throw new ArgumentError(`bar series '${s.label}' has ${s.values.length} values for ${categories.length} categories`);
    }
  });
  const finite = series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  if (categories.length === 0 || series.length === 0) return emptyScene(width, 120, title, 'no data');
  const axis = linearAxis(finite.length > 0 ? Math.min(...finite) : 0, finite.length > 0 ? Math.max(...finite) : 1, 5, true);

  const barH = 14;
  const groupGap = 10;
  const groupH = series.length * barH;
  const top = series.length > 1 ? 60 : 40;
  const labels = categories.map((c) => truncateMiddle(c, Math.min(MAX_LABEL, charsThatFit(width * 0.4, TICK))));
  const left = 20 + Math.max(...labels.map((l) => textWidth(l, TICK)));
  const right = width - 72;
  if (right - left < 60) throw new ArgumentError(`bar chart width ${width} leaves no room for bars next to the labels`);
  const bottom = top + categories.length * (groupH + groupGap);
  const height = bottom + (options.valueLabel ? 42 : 26);
  const px = (v: number) => left + axisFraction(axis, v) * (right - left);

  const shapes: Shape[] = [];
  if (title) shapes.push(text(12, 22, ellipsize(title, width - 24, TITLE), { size: TITLE, bold: true }));
  for (const t of axis.ticks) {
    const x = px(t);
    shapes.push(line(x, top, x, bottom, GRID));
    shapes.push(text(x, bottom + 16, formatTick(t), { anchor: 'middle', fill: MUTED }));
  }
  const zero = px(Math.max(axis.min, Math.min(axis.max, 0)));
  categories.forEach((c, ci) => {
    const gy = top + groupGap / 2 + ci * (groupH + groupGap);
    shapes.push(text(left - 8, gy + groupH / 2 + 4, labels[ci], { anchor: 'end' }));
    series.forEach((s, si) => {
      const v = s.values[ci];
      const y = gy + si * barH;
      const color = PALETTE[si % PALETTE.length];
      if (v === null || !Number.isFinite(v)) {
        shapes.push(text(zero + 4, y + barH - 3, 'n/a', { fill: MUTED }));
        return;
      }
      const x = px(v);
      const name = series.length > 1 ? `${c} (${s.label})` : c;
      shapes.push({ kind: 'rect', x: Math.min(zero, x), y: y + 1, w: Math.abs(x - zero), h: barH - 2, fill: color, title: `${name}: ${format(v)}`, className: 'bar' });
      shapes.push(text(Math.max(zero, x) + 4, y + barH - 3, format(v), { fill: INK }));
    });
  });
  shapes.push(line(zero, top, zero, bottom, INK), line(left, bottom, right, bottom, INK));
  if (options.valueLabel) shapes.push(text((left + right) / 2, height - 8, ellipsize(options.valueLabel, right - left, TICK), { anchor: 'middle', fill: MUTED }));
  if (series.length > 1) {
    let x = left;
    series.forEach((s, i) => {
      shapes.push({ kind: 'rect', x, y: 36, w: 12, h: 10, fill: PALETTE[i % PALETTE.length], className: 'swatch' });
      const l = truncateMiddle(s.label, MAX_LABEL);
      shapes.push(text(x + 16, 45, l));
      x += 16 + textWidth(l, TICK) + 18;
    });
  }
  return { width, height, background: '#ffffff', label: title || 'bar chart', shapes };
}

/** Rows of cells coloured on the [0, 1] viridis scale, with a colour legend on the right. */
export function heatmap(rows: HeatmapRow[], options: HeatmapOptions = {}): Scene {
  const width = options.width ?? 720;
  checkSize('heatmap width', width, 200);
  const title = options.title ?? '';
  const format = options.format ?? ((v: number) => `${Math.round(v * 100)}%`);
  if (rows.length === 0) return emptyScene(width, 120, title, 'no data');
  rows.forEach((r) => {
    if (r.values.length === 0) throw new ArgumentError(`heatmap row '${r.label}' has no values`);
  });
  const rowH = rows.length <= 40 ? 16 : Math.max(3, Math.floor(640 / rows.length));
  const showLabels = rowH >= 10;
  const labels = rows.map((r) => truncateMiddle(r.label, Math.min(MAX_LABEL, charsThatFit(width * 0.4, TICK))));
  const left = showLabels ? 20 + Math.max(...labels.map((l) => textWidth(l, TICK))) : 20;
  const top = 40;
  const legendW = 16;
  const right = width - 30 - legendW - 44;
  if (right - left < 60) throw new ArgumentError(`heatmap width ${width} leaves no room for cells next to the labels`);
  const bottom = top + rows.length * rowH;
  const height = Math.max(bottom, top + 120) + (options.xLabel ? 34 : 14);

  const shapes: Shape[] = [];
  if (title) shapes.push(text(12, 22, ellipsize(title, width - 24, TITLE), { size: TITLE, bold: true }));
  rows.forEach((r, ri) => {
    const y = top + ri * rowH;
    if (showLabels) shapes.push(text(left - 8, y + rowH / 2 + 4, labels[ri], { anchor: 'end' }));
    const n = r.values.length;
    r.values.forEach((v, j) => {
      // cell edges at exact fractions of the width, so rows with different counts line up at the ends
      const x0 = left + ((right - left) * j) / n;
      const x1 = left + ((right - left) * (j + 1)) / n;
      shapes.push({ kind: 'rect', x: x0, y, w: x1 - x0, h: rowH, fill: scaleColor(v), title: `${r.label}, block ${j + 1}/${n}: ${format(v)}`, className: 'cell' });
    });
  });
  if (options.xLabel) shapes.push(text((left + right) / 2, bottom + 22, ellipsize(options.xLabel, right - left, TICK), { anchor: 'middle', fill: MUTED }));
  // Legend: 20 steps from 1 (top) to 0 (bottom).
  const lx = right + 30;
  const steps = 20;
  const lh = 120;
  for (let k = 0; k < steps; k++) {
    const v = 1 - (k + 0.5) / steps;
    shapes.push({ kind: 'rect', x: lx, y: top + (k * lh) / steps, w: legendW, h: lh / steps, fill: scaleColor(v), className: 'legend' });
  }
  for (const v of [1, 0.5, 0]) shapes.push(text(lx + legendW + 4, top + (1 - v) * lh + 4, format(v), { fill: MUTED }));
  return { width, height, background: '#ffffff', label: title || 'heatmap', shapes };
}
