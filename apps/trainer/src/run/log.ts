// Run output: human lines on stdout (or nothing when quiet), JSON lines on stdout for scripts, a
// progress bar per stage on stderr, and metrics.jsonl in the run folder. On resume the metrics
// file is cut back to its size at the checkpoint, so it never holds steps twice.

import { closeSync, existsSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';
import { ProgressBar, type ProgressStream } from '../cli/progress.js';
import type { StepInfo } from '../train/steps.js';

export type OutputMode = 'human' | 'json' | 'quiet';

/** An fs error that does not say which file it is about (a write on a descriptor) gets `path`. */
function withPath(err: unknown, path: string): unknown {
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).path === undefined) (err as NodeJS.ErrnoException).path = path;
  return err;
}

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
    try {
      if (truncateTo !== undefined && existsSync(metricsPath)) truncateSync(metricsPath, truncateTo);
      this.#fd = openSync(metricsPath, 'a');
    } catch (err) {
      throw withPath(err, metricsPath);
    }
  }

  /** A line for people (human mode only). */
  say(line: string): void {
    if (this.mode === 'human') this.io.stdout.write(`${line}\n`);
  }

  /** An event: to metrics.jsonl always, and to stdout in json mode. */
  event(e: Record<string, unknown>): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`;
    try {
      writeSync(this.#fd, line);
    } catch (err) {
      throw withPath(err, this.path);
    }
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
