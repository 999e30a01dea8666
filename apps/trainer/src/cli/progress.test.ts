import { describe, expect, it } from 'vitest';
import type { StepInfo } from '../train/loop.js';
import { formatDuration, formatStep, ProgressBar } from './progress.js';

function info(step: number, steps: number): StepInfo {
  return { step, steps, loss: 2.5, lr: 1e-3, gradNorm: 1, tokens: step * 100, elapsedMs: step * 1000, tokensPerSec: 100, etaMs: (steps - step) * 1000 };
}

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns: 120, write: (s: string) => chunks.push(s) } };
}

describe('progress', () => {
  it('formats durations', () => {
    expect(formatDuration(4_400)).toBe('4s');
    expect(formatDuration(125_000)).toBe('2m05s');
    expect(formatDuration(3_780_000)).toBe('1h03m');
  });

  it('shows step/total, loss, throughput and ETA', () => {
    expect(formatStep(info(3, 10), 10)).toBe('step  3/10 [###-------]  30%  loss 2.5000  100 tok/s  ETA 7s');
    expect(formatStep(info(10, 10), 0)).toMatch(/done in 10s$/);
  });

  it('redraws one line in place on a terminal', () => {
    const { chunks, stream } = sink(true);
    const bar = new ProgressBar(stream, { redrawMs: 0 });
    for (let s = 1; s <= 5; s++) bar.update(info(s, 5));
    bar.finish();
    expect(chunks).toHaveLength(6);
    expect(chunks.slice(0, 5).every((c) => c.startsWith('\r\x1b[2K') && !c.includes('\n'))).toBe(true);
    expect(chunks[5]).toBe('\n');
    // the bar fills the room the 120 columns leave, capped at 30
    expect(chunks[4]).toMatch(/\[#{30}\]/);
  });

  it('fits the line to a narrow terminal and drops the bar when there is no room', () => {
    const chunks: string[] = [];
    const bar = new ProgressBar({ isTTY: true, columns: 50, write: (s: string) => chunks.push(s) }, { redrawMs: 0 });
    bar.update(info(2, 10));
    expect(chunks[0]).not.toMatch(/\[[#-]/);
    expect(chunks[0].length - '\r\x1b[2K'.length).toBeLessThanOrEqual(49);
    const unknown: string[] = [];
    new ProgressBar({ isTTY: true, columns: 0, write: (s: string) => unknown.push(s) }, { redrawMs: 0 }).update(info(2, 10));
    expect(unknown[0]).toMatch(/loss 2\.5000 .*ETA/);
  });

  it('prints plain lines at the first step, every tenth, and the last when not a terminal', () => {
    const { chunks, stream } = sink(false);
    const bar = new ProgressBar(stream, { lineMs: 1e9 });
    for (let s = 1; s <= 100; s++) bar.update(info(s, 100));
    bar.finish();
    expect(chunks).toHaveLength(11);
    expect(chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
    expect(chunks[0]).toMatch(/^step {3}1\/100/);
    expect(chunks[10]).toMatch(/^step 100\/100 .*done in/);
  });
});
