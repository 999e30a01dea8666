// Run output: human lines on stdout (or nothing when quiet), JSON lines on stdout for scripts, a
// progress bar per stage on stderr, and metrics.jsonl in the run folder. On resume the metrics
// file is cut back to its size at the checkpoint, so it never holds steps twice.

import { closeSync, existsSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';
import { ProgressBar, type ProgressStream } from '../cli/progress.js';
import type { StepInfo } from '../train/steps.js';

export type OutputMode = 'human' | 'json' | 'quiet';

export interface RunIO {
  stdout: ProgressStream;
  stderr: ProgressStream;
}

export class RunLog {
  readonly #fd: number;
  readonly path: string;
  #bar: ProgressBar | undefined;

  constructor(
    metricsPath: string,
    readonly mode: OutputMode,
    readonly io: RunIO,
    truncateTo?: number,
  ) {
    this.path = metricsPath;
    if (truncateTo !== undefined && existsSync(metricsPath)) truncateSync(metricsPath, truncateTo);
    this.#fd = openSync(metricsPath, 'a');
  }

  /** A line for people (human mode only). */
  say(line: string): void {
    if (this.mode === 'human') this.io.stdout.write(`${line}\n`);
  }

  /** An event: to metrics.jsonl always, and to stdout in json mode. */
  event(e: Record<string, unknown>): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`;
    writeSync(this.#fd, line);
    if (this.mode === 'json') this.io.stdout.write(line);
  }

  /** Bytes of metrics written so far (a checkpoint records it). */
  metricsBytes(): number {
    return statSync(this.path).size;
  }

  stageProgress(label: string): (info: StepInfo) => void {
    this.#bar?.finish();
    this.#bar = this.mode === 'quiet' || this.mode === 'json' ? undefined : new ProgressBar(this.io.stderr, { label });
    return (info) => this.#bar?.update(info);
  }

  endProgress(): void {
    this.#bar?.finish();
    this.#bar = undefined;
  }

  close(): void {
    this.endProgress();
    closeSync(this.#fd);
  }
}
