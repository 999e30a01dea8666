// Rasterizes plot scenes into PNG files: an RGBA canvas (filled rects, Bresenham lines with a
// square brush, the 5x7 bitmap font) and a PNG encoder (zlib deflate, CRC-32 computed here).

import { deflateSync } from 'node:zlib';
import { ArgumentError } from '@sparse/tensor';
import { GLYPH_ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, glyph } from './font.js';
import { type BarChartOptions, type BarSeries, type HeatmapOptions, type HeatmapRow, type LinePlotOptions, type LineSeries, barChart, heatmap, linePlot } from './plots.js';
import { type Scene, parseHex } from './scene.js';

export type Rgb = [number, number, number];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO-HDLC, the one PNG and zlib use) of `bytes`, continuing from `crc`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  // the CRC covers the type and the data, not the length
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/** Encodes 8-bit RGBA pixels (row-major, `width * height * 4` bytes) as a PNG file. */
export function encodePNG(width: number, height: number, rgba: Uint8Array): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ArgumentError(`encodePNG: size must be positive integers, got ${width}x${height}`);
  }
  if (rgba.length !== width * height * 4) throw new ArgumentError(`encodePNG: ${width}x${height} RGBA needs ${width * height * 4} bytes, got ${rgba.length}`);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type: RGBA
  // compression, filter method, interlace: all 0
  const stride = width * 4;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    // filter type 1 (Sub): flat plot regions become runs of zeros, which deflate well
    const row = y * (stride + 1);
    raw[row] = 1;
    const src = y * stride;
    for (let i = 0; i < stride; i++) raw[row + 1 + i] = (rgba[src + i] - (i >= 4 ? rgba[src + i - 4] : 0)) & 0xff;
  }
  const parts = [SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An opaque RGBA pixel buffer with the few drawing operations the plots need. */
export class RgbaCanvas {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;

  constructor(width: number, height: number, background: Rgb = [255, 255, 255]) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new ArgumentError(`RgbaCanvas: size must be positive integers, got ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.data = new Uint8Array(width * height * 4);
    this.data.set([background[0], background[1], background[2], 255]);
    for (let filled = 4; filled < this.data.length; filled *= 2) this.data.copyWithin(filled, 0, Math.min(filled, this.data.length - filled));
  }

  /** Pixels outside the canvas are ignored (clipping). */
  setPixel(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
    this.data[i + 3] = 255;
  }

  getPixel(x: number, y: number): [number, number, number, number] {
    const i = (y * this.width + x) * 4;
    return [this.data[i], this.data[i + 1], this.data[i + 2], this.data[i + 3]];
  }

  /** Fills the integer pixel rectangle [x0, x1) x [y0, y1). */
  fillRect(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    const xa = Math.max(0, x0);
    const xb = Math.min(this.width, x1);
    for (let y = Math.max(0, y0); y < Math.min(this.height, y1); y++) for (let x = xa; x < xb; x++) this.setPixel(x, y, c);
  }

  /** Bresenham line between integer points, drawn with a `width` x `width` square brush. */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, width = 1): void {
    const lo = -Math.floor((width - 1) / 2);
    const hi = lo + width - 1;
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    let x = x0;
    let y = y0;
    for (;;) {
      if (width === 1) this.setPixel(x, y, c);
      else this.fillRect(x + lo, y + lo, x + hi + 1, y + hi + 1, c);
      if (x === x1 && y === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
      }
    }
  }

  /** Width in pixels of `text` at glyph scale `scale`. */
  static textWidth(text: string, scale: number): number {
    return text.length === 0 ? 0 : [...text].length * GLYPH_ADVANCE * scale - scale;
  }

  /** Draws `text` with its top-left corner at (x, y), each font cell a `scale` x `scale` block. */
  text(x: number, y: number, text: string, c: Rgb, scale = 1, bold = false): void {
    let cx = x;
    for (const ch of text) {
      const rows = glyph(ch);
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (!((rows[r] >> (GLYPH_WIDTH - 1 - col)) & 1)) continue;
          const px = cx + col * scale;
          const py = y + r * scale;
          this.fillRect(px, py, px + scale + (bold ? 1 : 0), py + scale, c);
        }
      }
      cx += GLYPH_ADVANCE * scale;
    }
  }

  toPNG(): Uint8Array {
    return encodePNG(this.width, this.height, this.data);
  }
}

export interface PNGOptions {
  /** Pixels per scene unit (a positive integer; default 2 for sharp text). */
  scale?: number;
}

/** Glyph scale for a scene font size: 5x7 glyphs at about 9 px per cell row. */
export function fontScale(size: number, scale: number): number {
  return Math.max(1, Math.round((size * scale) / 9));
}

/** Draws a scene on a new canvas. */
export function renderScene(scene: Scene, options: PNGOptions = {}): RgbaCanvas {
  const s = options.scale ?? 2;
  if (!Number.isInteger(s) || s < 1 || s > 8) throw new ArgumentError(`PNG scale must be an integer in 1..8, got ${s}`);
  const canvas = new RgbaCanvas(Math.ceil(scene.width * s), Math.ceil(scene.height * s), parseHex(scene.background));
  const r = Math.round;
  for (const shape of scene.shapes) {
    if (shape.kind === 'rect') {
      canvas.fillRect(r(shape.x * s), r(shape.y * s), r((shape.x + shape.w) * s), r((shape.y + shape.h) * s), parseHex(shape.fill));
    } else if (shape.kind === 'polyline') {
      const c = parseHex(shape.stroke);
      const w = Math.max(1, r(shape.width * s));
      for (let i = 1; i < shape.points.length; i++) {
        const [a, b] = [shape.points[i - 1], shape.points[i]];
        canvas.line(r(a[0] * s), r(a[1] * s), r(b[0] * s), r(b[1] * s), c, w);
      }
    } else {
      const fs = fontScale(shape.size, s);
      const w = RgbaCanvas.textWidth(shape.text, fs);
      const x0 = r(shape.x * s) - (shape.anchor === 'middle' ? r(w / 2) : shape.anchor === 'end' ? w : 0);
      canvas.text(x0, r(shape.y * s) - GLYPH_HEIGHT * fs, shape.text, parseHex(shape.fill), fs, shape.bold);
    }
  }
  return canvas;
}

export function sceneToPNG(scene: Scene, options?: PNGOptions): Uint8Array {
  return renderScene(scene, options).toPNG();
}

export function linePlotPNG(series: LineSeries[], options?: LinePlotOptions & PNGOptions): Uint8Array {
  return sceneToPNG(linePlot(series, options), options);
}

export function barChartPNG(categories: string[], series: BarSeries[], options?: BarChartOptions & PNGOptions): Uint8Array {
  return sceneToPNG(barChart(categories, series, options), options);
}

export function heatmapPNG(rows: HeatmapRow[], options?: HeatmapOptions & PNGOptions): Uint8Array {
  return sceneToPNG(heatmap(rows, options), options);
}
