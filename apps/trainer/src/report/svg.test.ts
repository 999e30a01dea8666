import { describe, expect, it } from 'vitest';
import { markupProblem } from './check-markup.js';
import { barChart, heatmap, linePlot } from './plots.js';
import { barChartSVG, escapeXml, heatmapSVG, linePlotSVG } from './svg.js';

const count = (s: string, re: RegExp) => s.match(re)?.length ?? 0;

describe('SVG plots', () => {
  it('heatmap: one cell per layer x block, legend, well formed', () => {
    const rows = Array.from({ length: 7 }, (_, i) => ({ label: `blocks.${i}.mlp.up`, values: Array.from({ length: 32 }, (_, j) => ((i * 32 + j) % 11) / 10) }));
    const svg = heatmapSVG(rows, { title: 'Sparsity' });
    expect(count(svg, /class="cell"/g)).toBe(7 * 32);
    expect(count(svg, /class="legend"/g)).toBe(20);
    expect(svg).toContain('blocks.3.mlp.up, block 5/32: 10%');
    expect(markupProblem(svg)).toBeNull();
  });

  it('heatmap cells tile each row exactly, whatever the block count', () => {
    const scene = heatmap([
      { label: 'a', values: [0.1, 0.2, 0.3] },
      { label: 'b', values: [0.4] },
    ]);
    const cells = scene.shapes.filter((s) => s.kind === 'rect' && s.className === 'cell') as { x: number; y: number; w: number }[];
    const rowA = cells.slice(0, 3);
    const [rowB] = cells.slice(3);
    expect(rowA[0].x).toBeCloseTo(rowB.x, 9);
    expect(rowA[2].x + rowA[2].w).toBeCloseTo(rowB.x + rowB.w, 9);
    expect(rowA[1].x).toBeCloseTo(rowA[0].x + rowA[0].w, 9);
    expect(rowB.y).toBeGreaterThan(rowA[0].y);
  });

  it('line plot: a polyline per series, ticks at data range, legend entries', () => {
    const series = [
      { label: 'pretrain', points: [0, 10, 20, 30].map((x) => ({ x, y: 3 - x / 20 })) },
      { label: 'train', points: [0, 10, 20].map((x) => ({ x, y: 2 - x / 40 })) },
    ];
    const svg = linePlotSVG(series, { title: 'Loss', xLabel: 'step', yLabel: 'loss' });
    expect(count(svg, /<polyline [^>]*stroke-width="2"/g)).toBe(2);
    expect(count(svg, /class="swatch"/g)).toBe(2);
    expect(svg).toContain('>pretrain<');
    // x ticks 0..30, y ticks cover 1.5..3
    expect(svg).toContain('>30<');
    expect(svg).toContain('>3<');
    expect(markupProblem(svg)).toBeNull();
  });

  it('line plot maps data to pixels linearly, and on a log axis geometrically', () => {
    const lin = linePlot([{ label: 's', points: [{ x: 0, y: 0 }, { x: 5, y: 5 }, { x: 10, y: 10 }] }]);
    const line = lin.shapes.find((s) => s.kind === 'polyline' && s.width === 2);
    if (!line || line.kind !== 'polyline') throw new Error('no line');
    const [a, b, c] = line.points;
    expect(b[0]).toBeCloseTo((a[0] + c[0]) / 2, 9);
    expect(b[1]).toBeCloseTo((a[1] + c[1]) / 2, 9);

    const log = linePlot([{ label: 's', points: [{ x: 0, y: 0.01 }, { x: 1, y: 0.1 }, { x: 2, y: 1 }, { x: 3, y: -1 }] }], { logY: true, yLabel: 'loss' });
    const lline = log.shapes.find((s) => s.kind === 'polyline' && s.width === 2);
    if (!lline || lline.kind !== 'polyline') throw new Error('no line');
    expect(lline.points).toHaveLength(3); // y <= 0 left out on a log axis
    const [p, q, r] = lline.points;
    expect(q[1]).toBeCloseTo((p[1] + r[1]) / 2, 9);
    expect(log.shapes.some((s) => s.kind === 'text' && s.text === 'loss (log scale)')).toBe(true);
  });

  it('line plot thins very long series but keeps their extremes, and caps the legend', () => {
    const n = 100_000;
    const points = Array.from({ length: n }, (_, i) => ({ x: i, y: i === 77_777 ? 50 : i === 12_345 ? -50 : Math.sin(i / 1000) }));
    const scene = linePlot([{ label: 'long', points }], { width: 720 });
    const line = scene.shapes.find((s) => s.kind === 'polyline' && s.width === 2);
    if (!line || line.kind !== 'polyline') throw new Error('no line');
    expect(line.points.length).toBeLessThanOrEqual(4 * 720);
    const ys = line.points.map((p) => p[1]);
    const full = linePlot([{ label: 'long', points: points.filter((p) => Math.abs(p.y) === 50) }], { width: 720 });
    const fullLine = full.shapes.find((s) => s.kind === 'polyline' && s.width === 2);
    if (!fullLine || fullLine.kind !== 'polyline') throw new Error('no line');
    // the two spikes are still the top and bottom of the thinned line, at the same pixels
    expect(Math.min(...ys)).toBeCloseTo(Math.min(...fullLine.points.map((p) => p[1])), 9);
    expect(Math.max(...ys)).toBeCloseTo(Math.max(...fullLine.points.map((p) => p[1])), 9);
    for (let k = 1; k < line.points.length; k++) expect(line.points[k][0]).toBeGreaterThanOrEqual(line.points[k - 1][0]);

    const many = Array.from({ length: 40 }, (_, i) => ({ label: `s${i}`, points: [{ x: 0, y: i }, { x: 1, y: i + 1 }] }));
    const crowded = linePlot(many, { height: 300 });
    const legendTexts = crowded.shapes.filter((s) => s.kind === 'text' && /^s\d+$|more$/.test(s.text));
    expect(legendTexts.length).toBeLessThan(40);
    const last = legendTexts[legendTexts.length - 1];
    expect(last.kind === 'text' && last.text).toBe(`+${40 - legendTexts.length + 1} more`);
    const lastText = last as { y: number };
    expect(lastText.y).toBeLessThanOrEqual(300);
  });

  it('bar chart: one bar per finite value, lengths proportional from zero', () => {
    const scene = barChart(['a', 'b', 'c'], [{ label: 'ppl', values: [10, 20, null] }]);
    const bars = scene.shapes.filter((s) => s.kind === 'rect' && s.className === 'bar') as { x: number; w: number }[];
    expect(bars).toHaveLength(2);
    expect(bars[0].x).toBeCloseTo(bars[1].x, 9);
    expect(bars[1].w).toBeCloseTo(2 * bars[0].w, 9);
    expect(scene.shapes.some((s) => s.kind === 'text' && s.text === 'n/a')).toBe(true);
    const svg = barChartSVG(['x', 'y'], [{ label: 'file', values: [1, 2] }, { label: 'dense', values: [3, 4] }], { title: 'Sizes' });
    expect(count(svg, /class="bar"/g)).toBe(4);
    expect(count(svg, /class="swatch"/g)).toBe(2);
    expect(markupProblem(svg)).toBeNull();
    expect(() => barChart(['a'], [{ label: 's', values: [1, 2] }])).toThrow(/2 values for 1 categories/);
  });

  it('escapes text and draws empty plots without crashing', () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const evil = '<script>alert(1)</script>';
    for (const svg of [
      linePlotSVG([{ label: evil, points: [{ x: 0, y: 1 }] }], { title: evil, xLabel: evil, yLabel: evil }),
      barChartSVG([evil], [{ label: evil, values: [1] }], { title: evil }),
      heatmapSVG([{ label: evil, values: [0.5] }], { title: evil }),
    ]) {
      expect(svg).not.toContain('<script');
      expect(markupProblem(svg)).toBeNull();
    }
    for (const svg of [linePlotSVG([], { title: 'none' }), linePlotSVG([{ label: 'x', points: [{ x: 0, y: Number.NaN }] }]), barChartSVG([], []), heatmapSVG([])]) {
      expect(svg).toContain('no data');
      expect(markupProblem(svg)).toBeNull();
    }
    expect(() => heatmap([{ label: 'w', values: [] }])).toThrow(/'w' has no values/);
    expect(() => linePlot([], { width: 10 })).toThrow(/width must be a number >= 200/);
  });
});
