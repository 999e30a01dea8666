// Scenes as standalone SVG strings (valid XML, usable inline in HTML or saved as .svg).

import { type BarChartOptions, type BarSeries, type HeatmapOptions, type HeatmapRow, type LinePlotOptions, type LineSeries, barChart, heatmap, linePlot } from './plots.js';
import type { Scene, Shape } from './scene.js';

/** Escapes text for HTML and XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const n = (v: number) => String(Math.round(v * 100) / 100);

function shapeSVG(s: Shape): string {
  switch (s.kind) {
    case 'rect': {
      const cls = s.className ? ` class="${escapeXml(s.className)}"` : '';
      // crispEdges: no anti-aliased seams between adjacent heatmap cells
      const attrs = `x="${n(s.x)}" y="${n(s.y)}" width="${n(s.w)}" height="${n(s.h)}" fill="${s.fill}" shape-rendering="crispEdges"${cls}`;
      return s.title ? `<rect ${attrs}><title>${escapeXml(s.title)}</title></rect>` : `<rect ${attrs}/>`;
    }
    case 'polyline':
      return `<polyline points="${s.points.map(([x, y]) => `${n(x)},${n(y)}`).join(' ')}" fill="none" stroke="${s.stroke}" stroke-width="${n(s.width)}" stroke-linejoin="round" stroke-linecap="round"/>`;
    case 'text': {
      const weight = s.bold ? ' font-weight="bold"' : '';
      return `<text x="${n(s.x)}" y="${n(s.y)}" font-size="${n(s.size)}" text-anchor="${s.anchor}" fill="${s.fill}"${weight}>${escapeXml(s.text)}</text>`;
    }
  }
}

/** The scene as an <svg> element with its own size, background and font. */
export function sceneToSVG(scene: Scene): string {
  const body = scene.shapes.map(shapeSVG).join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${n(scene.width)}" height="${n(scene.height)}" viewBox="0 0 ${n(scene.width)} ${n(scene.height)}" ` +
    `role="img" aria-label="${escapeXml(scene.label)}" font-family="ui-monospace, Menlo, Consolas, monospace">` +
    `<rect x="0" y="0" width="${n(scene.width)}" height="${n(scene.height)}" fill="${scene.background}"/>${body}</svg>`
  );
}

export function linePlotSVG(series: LineSeries[], options?: LinePlotOptions): string {
  return sceneToSVG(linePlot(series, options));
}

export function barChartSVG(categories: string[], series: BarSeries[], options?: BarChartOptions): string {
  return sceneToSVG(barChart(categories, series, options));
}

export function heatmapSVG(rows: HeatmapRow[], options?: HeatmapOptions): string {
  return sceneToSVG(heatmap(rows, options));
}
