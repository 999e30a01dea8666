import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { barChart, heatmap, linePlot } from './plots.js';
import { glyph, hasGlyph } from './font.js';
import { RgbaCanvas, crc32, encodePNG, renderScene, sceneToPNG } from './png.js';
import { parseHex, scaleColor } from './scene.js';

// An independent PNG reader: chunk walk with CRC check (node's zlib.crc32), IHDR, inflate, and all
// five row filters, so the test does not trust the encoder's own choices.
interface Decoded {
  width: number;
  height: number;
  chunks: string[];
  pixel(x: number, y: number): [number, number, number, number];
}

function decodePNG(file: Uint8Array): Decoded {
  expect([...file.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const chunks: string[] = [];
  const idat: Uint8Array[] = [];
  let width = 0;
  let height = 0;
  for (let at = 8; at < file.length; ) {
    const len = view.getUint32(at);
    const type = String.fromCharCode(...file.subarray(at + 4, at + 8));
    const body = file.subarray(at + 8, at + 8 + len);
    const crc = view.getUint32(at + 8 + len);
    expect(crc, `CRC of ${type}`).toBe(zlibCrc32(file.subarray(at + 4, at + 8 + len)));
    chunks.push(type);
    if (type === 'IHDR') {
      expect(len).toBe(13);
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      expect([...body.subarray(8)]).toEqual([8, 6, 0, 0, 0]); // 8-bit RGBA, deflate, adaptive filters, no interlace
    }
    if (type === 'IDAT') idat.push(body);
    at += 12 + len;
  }
  expect(chunks[0]).toBe('IHDR');
  expect(chunks[chunks.length - 1]).toBe('IEND');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  expect(raw.length).toBe(height * (stride + 1));
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i];
      const a = i >= 4 ? px[y * stride + i - 4] : 0;
      const b = y > 0 ? px[(y - 1) * stride + i] : 0;
      const c = i >= 4 && y > 0 ? px[(y - 1) * stride + i - 4] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else expect(filter).toBe(0);
      px[y * stride + i] = (x + pred) & 0xff;
    }
  }
  return {
    width,
    height,
    chunks,
    pixel: (x, y) => {
      const i = y * stride + x * 4;
      return [px[i], px[i + 1], px[i + 2], px[i + 3]];
    },
  };
}

const rgba = (hex: string) => [...parseHex(hex), 255];

describe('PNG encoding', () => {
  it('crc32 matches zlib and the PNG spec value for IEND', () => {
    expect(crc32(new TextEncoder().encode('IEND'))).toBe(0xae426082);
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(crc32(bytes)).toBe(zlibCrc32(bytes));
      }));
  });

  it('round-trips arbitrary RGBA pixels through an independent decoder', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 7 }), fc.infiniteStream(fc.integer({ min: 0, max: 255 })), (w, h, stream) => {
        const data = Uint8Array.from(stream.take(w * h * 4));
        const d = decodePNG(encodePNG(w, h, data));
        expect([d.width, d.height]).toEqual([w, h]);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) expect(d.pixel(x, y)).toEqual([...data.subarray((y * w + x) * 4, (y * w + x) * 4 + 4)]);
      }),
      { numRuns: 40 },
    );
  });

  it('rejects wrong sizes', () => {
    expect(() => encodePNG(2, 2, new Uint8Array(15))).toThrow(/needs 16 bytes/);
    expect(() => encodePNG(0, 2, new Uint8Array(0))).toThrow(/positive integers/);
  });
});

describe('canvas', () => {
  it('fills rects and draws Bresenham lines at the expected pixels', () => {
    const c = new RgbaCanvas(12, 8);
    c.fillRect(1, 1, 4, 3, [255, 0, 0]);
    c.line(0, 7, 9, 4, [0, 0, 255]); // slope -1/3: y = 7 - round(x / 3)
    c.line(11, 0, 11, 7, [0, 128, 0]);
    c.fillRect(-5, -5, 1, 1, [1, 2, 3]); // clipped to pixel (0, 0)
    const d = decodePNG(c.toPNG());
    expect([d.width, d.height]).toEqual([12, 8]);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 12; x++) {
        let want = [255, 255, 255, 255];
        if (x >= 1 && x < 4 && y >= 1 && y < 3) want = [255, 0, 0, 255];
        if (x <= 9 && y === 7 - Math.round(x / 3)) want = [0, 0, 255, 255];
        if (x === 11) want = [0, 128, 0, 255];
        if (x === 0 && y === 0) want = [1, 2, 3, 255];
        expect(d.pixel(x, y), `pixel ${x},${y}`).toEqual(want);
      }
    }
  });

  it('draws thick lines as a square brush', () => {
    const c = new RgbaCanvas(10, 10);
    c.line(2, 5, 7, 5, [0, 0, 0], 3);
    let dark = 0;
    for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) if (c.getPixel(x, y)[0] === 0) dark++;
    expect(dark).toBe(8 * 3); // x 1..8, y 4..6
    expect(c.getPixel(1, 4)[0]).toBe(0);
    expect(c.getPixel(8, 6)[0]).toBe(0);
  });

  it('renders the 5x7 font: "1" and "L" cell by cell, at scale 2', () => {
    const c = new RgbaCanvas(14, 16);
    c.text(1, 1, '1L', [0, 0, 0], 1);
    const one = ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'];
    const ell = ['#....', '#....', '#....', '#....', '#....', '#....', '#####'];
    for (let r = 0; r < 7; r++) {
      for (let col = 0; col < 5; col++) {
        expect(c.getPixel(1 + col, 1 + r)[0] === 0, `'1' ${col},${r}`).toBe(one[r][col] === '#');
        expect(c.getPixel(7 + col, 1 + r)[0] === 0, `'L' ${col},${r}`).toBe(ell[r][col] === '#');
      }
    }
    const big = new RgbaCanvas(12, 16);
    big.text(0, 0, 'L', [0, 0, 0], 2);
    expect(big.getPixel(1, 13)[0]).toBe(0); // bottom bar, cell (0, 6)
    expect(big.getPixel(9, 13)[0]).toBe(0); // cell (4, 6)
    expect(big.getPixel(9, 11)[0]).toBe(255); // cell (4, 5) is empty
    expect(RgbaCanvas.textWidth('abc', 2)).toBe(34);
  });

  it('has lowercase glyphs of its own: every letter differs from its capital, "a" and "g" cell by cell', () => {
    for (const ch of 'abcdefghijklmnopqrstuvwxyz') {
      expect(hasGlyph(ch)).toBe(true);
      expect([...glyph(ch)], ch).not.toEqual([...glyph(ch.toUpperCase())]);
      expect([...glyph(ch)], ch).not.toEqual([...glyph('?')]);
    }
    const c = new RgbaCanvas(14, 9);
    c.text(1, 1, 'ag', [0, 0, 0], 1);
    const a = ['.....', '.....', '.###.', '....#', '.####', '#...#', '.####'];
    const g = ['.....', '.####', '#...#', '#...#', '.####', '....#', '.###.'];
    for (let r = 0; r < 7; r++) {
      for (let col = 0; col < 5; col++) {
        expect(c.getPixel(1 + col, 1 + r)[0] === 0, `'a' ${col},${r}`).toBe(a[r][col] === '#');
        expect(c.getPixel(7 + col, 1 + r)[0] === 0, `'g' ${col},${r}`).toBe(g[r][col] === '#');
      }
    }
    // '×' draws as 'x', '…' as three dots
    expect([...glyph('×')]).toEqual([...glyph('x')]);
    expect([...glyph('…')]).toEqual([0, 0, 0, 0, 0, 0, 0b10101]);
  });
});

describe('plots as PNG', () => {
  it('heatmap: every cell centre has its value colour in the decoded file', () => {
    const rows = [
      { label: 'a', values: [0, 0.25, 0.5, 0.75] },
      { label: 'b', values: [1, 0.1] },
      { label: 'c', values: [0.6] },
    ];
    for (const scale of [1, 2]) {
      const scene = heatmap(rows);
      const d = decodePNG(sceneToPNG(scene, { scale }));
      expect([d.width, d.height]).toEqual([scene.width * scale, Math.ceil(scene.height * scale)]);
      const cells = scene.shapes.filter((s) => s.kind === 'rect' && s.className === 'cell');
      const values = rows.flatMap((r) => r.values);
      expect(cells).toHaveLength(values.length);
      cells.forEach((cell, k) => {
        if (cell.kind !== 'rect') throw new Error('unreachable');
        const x = Math.floor((cell.x + cell.w / 2) * scale);
        const y = Math.floor((cell.y + cell.h / 2) * scale);
        expect(d.pixel(x, y), `cell ${k}`).toEqual(rgba(scaleColor(values[k])));
      });
      expect(d.pixel(0, 0)).toEqual([255, 255, 255, 255]);
    }
  });

  it('line plot: the series colour appears along the line and the text ink is present', () => {
    const scene = linePlot([{ label: 'loss', points: [0, 1, 2, 3, 4].map((x) => ({ x, y: 4 - x })) }], { title: 'Loss', xLabel: 'step' });
    const canvas = renderScene(scene, { scale: 1 });
    const line = scene.shapes.find((s) => s.kind === 'polyline' && s.width === 2);
    if (!line || line.kind !== 'polyline') throw new Error('no series line');
    const d = decodePNG(canvas.toPNG());
    // the midpoint of the straight series lies on the drawn line
    const [x0, y0] = line.points[0];
    const [x1, y1] = line.points[line.points.length - 1];
    expect(d.pixel(Math.round((x0 + x1) / 2), Math.round((y0 + y1) / 2))).toEqual(rgba(line.stroke));
    // the title's glyphs are drawn in ink near the top left
    let ink = 0;
    for (let y = 0; y < 30; y++) for (let x = 0; x < 80; x++) if (d.pixel(x, y)[0] < 100) ink++;
    expect(ink).toBeGreaterThan(20);
  });
});

describe('long labels', () => {
  const long = 'stage 3 train (sr-ste, 2:4 masks, decaying regularizer, resumed) on the shifted task';
  const inside = (scene: ReturnType<typeof linePlot>) => {
    for (const s of scene.shapes) {
      if (s.kind !== 'text') continue;
      // the PNG's own width of the text at scale 1, against the scene
      const w = RgbaCanvas.textWidth(s.text, Math.max(1, Math.round(s.size / 9)));
      const x0 = s.anchor === 'middle' ? s.x - w / 2 : s.anchor === 'end' ? s.x - w : s.x;
      expect(x0, s.text).toBeGreaterThanOrEqual(0);
      expect(x0 + Math.max(w, s.text.length * s.size * 0.6), s.text).toBeLessThanOrEqual(scene.width + 1);
    }
  };

  it('are shortened to fit the picture: titles and axis labels end in an ellipsis, legend and bar labels lose their middle', () => {
    const line = linePlot([{ label: long, points: [{ x: 0, y: 1 }, { x: 1, y: 2 }] }, { label: 'pretrain', points: [{ x: 0, y: 2 }] }], {
      title: `Training loss of ${long} and more`,
      xLabel: `step ${long}`,
      yLabel: `loss ${long} ${long}`,
    });
    inside(line);
    const texts = line.shapes.flatMap((s) => (s.kind === 'text' ? [s.text] : []));
    expect(texts.some((t) => t.startsWith('Training loss of stage') && t.endsWith('…'))).toBe(true);
    expect(texts).toContain('pretrain');
    expect(texts.some((t) => t.startsWith('stage 3') && t.includes('...') && t.endsWith('task'))).toBe(true);
    const bars = barChart([long, 'after prune'], [{ label: 'perplexity', values: [3, 4] }], { valueLabel: long });
    inside(bars);
    const map = heatmap([{ label: `blocks.0.${long}.mlp.up`, values: [0.5] }]);
    inside(map);
    // lowercase survives into the PNG: 'pretrain' is drawn with the lowercase glyphs
    expect(texts.join('')).toMatch(/[a-z]/);
  });
});
