// Training progress on a stream (stderr): a bar redrawn in place on a terminal, plain periodic
// lines otherwise (logs, CI), so a piped run still shows it is alive without flooding the log.

import type { StepInfo } from '../train/steps.js';

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Redraw in place; defaults to the stream's isTTY. */
  tty?: boolean;
  /** Minimum time between redraws on a terminal. */
  redrawMs?: number;
  /** Minimum time between plain lines when not a terminal (a line also at every 10% of steps). */
  lineMs?: number;
  /** Printed before each line (the stage, in a multi-stage run). */
  label?: string;
}

/** "45s", "2m05s", "1h03m". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** One status line: step/total, bar (when width allows), loss, throughput, ETA. */
export function formatStep(info: StepInfo, barWidth: number): string {
  const digits = String(info.steps).length;
  const frac = info.steps > 0 ? info.step / info.steps : 1;
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const bar = barWidth > 0 ? ` [${'#'.repeat(Math.round(frac * barWidth)).padEnd(barWidth, '-')}]` : '';
  const tps = Math.round(info.tokensPerSec).toLocaleString('en-US');
  const eta = info.step >= info.steps ? `done in ${formatDuration(info.elapsedMs)}` : `ETA ${formatDuration(info.etaMs)}`;
  return `step ${String(info.step).padStart(digits)}/${info.steps}${bar} ${pct}  loss ${info.loss.toFixed(4)}  ${tps} tok/s  ${eta}`;
}

export class ProgressBar {
  private readonly tty: boolean;
  private readonly redrawMs: number;
  private readonly lineMs: number;
  private lastDraw = -Infinity;
  private lastTenth = 0;
  private drawn = false;
  private readonly prefix: string;

  constructor(
    private readonly stream: ProgressStream,
    options: ProgressOptions = {},
  ) {
    this.tty = options.tty ?? Boolean(stream.isTTY);
    this.redrawMs = options.redrawMs ?? 100;
    this.lineMs = options.lineMs ?? 15_000;
    this.prefix = options.label ? `${options.label} ` : '';
  }

  update(info: StepInfo): void {
    const now = performance.now();
    const last = info.step >= info.steps;
    if (this.tty) {
      if (!last && now - this.lastDraw < this.redrawMs) return;
      const cols = this.stream.columns || 80; // 0 or undefined when the size is unknown
      // the bar takes the room the text leaves (up to 30), or is left out below 8 characters
      const room = cols - 1 - this.prefix.length - formatStep(info, 0).length - 3;
      const line = this.prefix + formatStep(info, room >= 8 ? Math.min(30, room) : 0);
      this.stream.write(`\r\x1b[2K${line.slice(0, cols - 1)}`);
      this.drawn = true;
    } else {
      const tenth = Math.floor((info.step * 10) / Math.max(1, info.steps));
      const due = info.step === 1 || last || tenth > this.lastTenth || now - this.lastDraw >= this.lineMs;
      if (!due) return;
      this.lastTenth = tenth;
      this.stream.write(`${this.prefix}${formatStep(info, 0)}\n`);
    }
    this.lastDraw = now;
  }

  /** Ends the in-place line so later output starts on a fresh line. */
  finish(): void {
    if (this.tty && this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
