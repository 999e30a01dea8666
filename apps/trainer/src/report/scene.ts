// A plot is laid out once as a scene of primitives (rects, polylines, text) in pixel units; svg.ts
// and png.ts each draw the same scene, so the HTML and the PNG copies show identical plots.

export interface RectShape {
  kind: 'rect';
  x: number;
  y: number;
  w: number;
  h: number;
  fill: string;
  /** Tooltip (SVG <title>) and a class name, for hover and for tests. */
  title?: string;
  className?: string;
}

export interface PolylineShape {
  kind: 'polyline';
  points: [number, number][];
  stroke: string;
  width: number;
}

export interface TextShape {
  kind: 'text';
  /** Anchor point; y is the baseline. */
  x: number;
  y: number;
  text: string;
  /** Font size in pixels (PNG: 5x7 glyphs at scale 1 below 14px, scale 2 from 14px). */
  size: number;
  anchor: 'start' | 'middle' | 'end';
  fill: string;
  bold?: boolean;
}

export type Shape = RectShape | PolylineShape | TextShape;

export interface Scene {
  width: number;
  height: number;
  background: string;
  /** Accessible description (SVG aria-label). */
  label: string;
  shapes: Shape[];
}

/** Estimated advance width of a character: the 5x7 PNG font advances 6 px at 11 px. */
export const CHAR_WIDTH = 0.6;

export function textWidth(text: string, size: number): number {
  return text.length * size * CHAR_WIDTH;
}

/**
 * `text` cut at the end with '…' so it is at most `maxWidth` wide at font `size`, in SVG and in
 * the PNG font; unchanged when it fits.
 */
export function ellipsize(text: string, maxWidth: number, size: number): string {
  const advance = widestAdvance(size);
  if (text.length * advance <= maxWidth) return text;
  const chars = Math.max(0, Math.floor(maxWidth / advance) - 1);
  return `${text.slice(0, chars).trimEnd()}…`;
}

/**
 * The widest a character of font `size` gets: the SVG estimate, or the 5x7 PNG font's advance at
 * 1 and 2 pixels per unit (its glyph scale is rounded, so 14px text advances 12 units at scale 1).
 */
function widestAdvance(size: number): number {
  return Math.max(size * CHAR_WIDTH, 6 * Math.max(1, Math.round(size / 9)), 3 * Math.max(1, Math.round((2 * size) / 9)));
}

/** Most characters of `size` text that fit `maxWidth`, for truncateMiddle. */
export function charsThatFit(maxWidth: number, size: number): number {
  return Math.max(4, Math.floor(maxWidth / widestAdvance(size)));
}

/** Shortens `text` to at most `max` characters by cutting its middle ('blocks.0...mlp.up'). */
export function truncateMiddle(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 3) return text.slice(0, max);
  const keep = max - 3;
  const head = Math.ceil(keep / 2);
  return `${text.slice(0, head)}...${text.slice(text.length - (keep - head))}`;
}

/** Ten distinguishable series colours (Tableau 10). */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

export function parseHex(color: string): [number, number, number] {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) throw new Error(`not a #rrggbb colour: ${color}`);
  const v = parseInt(m[1], 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function hex(r: number, g: number, b: number): string {
  return `#${[r, g, b].map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;
}

// Viridis at five stops: perceptually uniform and readable in greyscale and by colour-blind readers.
const VIRIDIS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'].map(parseHex);

/** Colour of a value in [0, 1] on the sparsity scale (dark purple dense, yellow empty). */
export function scaleColor(t: number): string {
  if (!Number.isFinite(t)) return '#cccccc';
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  return hex(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f);
}

/** A "nice" step (1, 2 or 5 times a power of ten) giving about `count` intervals over `span`. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0)) return 1;
  const raw = span / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

export interface Axis {
  min: number;
  max: number;
  log: boolean;
  ticks: number[];
}

/** Linear axis: bounds widened to nice multiples of the tick step. */
export function linearAxis(lo: number, hi: number, count = 5, zero = false): Axis {
  const nonNegative = lo >= 0;
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  if (zero) {
    lo = nonNegative ? 0 : Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  const step = niceStep(hi - lo, count);
  const min = Math.floor(lo / step + 1e-9) * step;
  const max = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = Math.round(min / step); k * step <= max + step * 1e-9; k++) ticks.push(cleanFloat(k * step));
  return { min, max, log: false, ticks };
}

/**
 * Log axis over positive values: bounds at powers of ten when the data spans a decade or more
 * (ticks 1, 2, 5 x 10^k while that gives few enough), otherwise tight bounds with linear nice ticks.
 */
export function logAxis(lo: number, hi: number, count = 5): Axis {
  if (!(lo > 0) || !(hi > 0)) throw new Error('log axis needs positive bounds');
  if (hi / lo < 10) {
    const a = linearAxis(lo, hi, count);
    const min = a.min > 0 ? a.min : lo;
    return { min, max: a.max, log: true, ticks: a.ticks.filter((t) => t >= min && t > 0) };
  }
  const e0 = Math.floor(Math.log10(lo) + 1e-9);
  const e1 = Math.ceil(Math.log10(hi) - 1e-9);
  const min = cleanFloat(10 ** e0);
  const max = cleanFloat(10 ** e1);
  const decades = e1 - e0;
  const mult = decades <= 3 ? [1, 2, 5] : [1];
  const every = Math.max(1, Math.ceil(decades / 8));
  const ticks: number[] = [];
  for (let e = e0; e <= e1; e += every) for (const m of mult) if (m * 10 ** e <= max * (1 + 1e-9)) ticks.push(cleanFloat(m * 10 ** e));
  return { min, max, log: true, ticks };
}

function cleanFloat(v: number): number {
  return Number.parseFloat(v.toPrecision(12));
}

/** Maps a value on `axis` to [0, 1]. */
export function axisFraction(axis: Axis, v: number): number {
  if (axis.log) return (Math.log(v) - Math.log(axis.min)) / (Math.log(axis.max) - Math.log(axis.min));
  return (v - axis.min) / (axis.max - axis.min);
}

/** Short tick label: up to 4 significant digits, k/M/G/T from 10^4 up, exponent form below 10^-3. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 && a < 1e15) {
    const group = Math.floor(Math.log10(a) / 3 + 1e-12);
    return `${Number.parseFloat((v / 10 ** (3 * group)).toPrecision(4))}${' kMGT'[group]}`;
  }
  if (a >= 1e15 || a < 1e-3) {
    const [mant, exp] = v.toExponential(2).split('e');
    return `${Number.parseFloat(mant)}e${Number.parseInt(exp, 10)}`;
  }
  return String(Number.parseFloat(v.toPrecision(4)));
}
