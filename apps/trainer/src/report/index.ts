// The run report: HTML with inline SVG plots, PNG copies of the plots, and their building blocks.
export {
  validateReportData,
  MAX_ROW_BLOCKS,
  type ReportData,
  type ReportModel,
  type ReportStage,
  type ReportLossCurve,
  type ReportLossPoint,
  type ReportEvaluation,
  type ReportLayer,
  type ReportNM,
  type ReportAdapter,
  type ReportFile,
  type ReportMaskTrace,
} from './types.js';
export { type Scene, type Shape, type Axis, linearAxis, logAxis, niceStep, formatTick, scaleColor } from './scene.js';
export {
  linePlot,
  barChart,
  heatmap,
  type LineSeries,
  type LinePlotOptions,
  type BarSeries,
  type BarChartOptions,
  type HeatmapRow,
  type HeatmapOptions,
} from './plots.js';
export { sceneToSVG, linePlotSVG, barChartSVG, heatmapSVG, escapeXml } from './svg.js';
export { sceneToPNG, renderScene, linePlotPNG, barChartPNG, heatmapPNG, encodePNG, crc32, RgbaCanvas, type PNGOptions, type Rgb } from './png.js';
export { renderReportHTML, reportPlots, formatBytes, formatNumber, formatInt, formatPercent, type ReportPlot } from './html.js';
export { writeReport, type WrittenReport } from './write.js';
