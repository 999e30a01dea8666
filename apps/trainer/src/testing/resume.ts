// Test helper: run a recipe to the end, run it again stopped inside stages (in-process, after a
// checkpoint) and resumed each time, then compare the two runs step for step.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ResolvedRecipe } from '../recipe/schema.js';
import { readCheckpoint, type CheckpointContent } from '../run/checkpoint.js';
import { resumeRun, startRun } from '../run/runner.js';

export interface Event {
  event: string;
  stage?: number;
  step?: number;
  loss?: number;
  perplexity?: number;
}

export const silent = { write: () => true };
export const quiet = { mode: 'quiet' as const, io: { stdout: silent, stderr: silent } };

export const events = (dir: string): Event[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Event);

/** JSON-mode output that throws (stopping the run there) when the step event of `stop` is written. */
function stopAt(stop: { stage: number; step: number }) {
  return {
    stdout: {
      write: (line: string) => {
        const e = JSON.parse(line) as Event;
        if (e.event === 'step' && e.stage === stop.stage && e.step === stop.step) throw new Error(`stopped at ${stop.stage}:${stop.step}`);
        return true;
      },
    },
    stderr: silent,
  };
}

export interface Stop {
  stage: number;
  /** The step whose event stops the run (after the checkpoint at `resumeAt`, before the next one). */
  step: number;
  resumeAt: number;
  /** A key the checkpoint's stage state must hold. */
  state: string;
}

/**
 * Starts `recipe` in `dir`, stops it at each of `stops` in turn (resuming in between), checks that
 * each stop left a checkpoint at `resumeAt` holding `state` (then calls `check` on it), and finally
 * resumes it to the end.
 */
export async function runWithStops(recipe: ResolvedRecipe, dir: string, stops: Stop[], check?: (stop: Stop, cp: CheckpointContent) => void): Promise<void> {
  for (const [i, s] of stops.entries()) {
    const io = stopAt(s);
    const run = i === 0 ? startRun(recipe, { dir, mode: 'json', io }) : resumeRun(dir, { mode: 'json', io });
    await expect(run).rejects.toThrow(`stopped at ${s.stage}:${s.step}`);
    const cp = await readCheckpoint(dir);
    expect(cp.next).toEqual({ stage: s.stage, step: s.resumeAt });
    expect(cp.stageState).toHaveProperty(s.state);
    check?.(s, cp);
  }
  await resumeRun(dir, quiet);
}

/** The two runs logged the same steps, each once, with losses equal to 1e-6 relative, the same mask events, and ended with the same parameters. */
export async function expectSameRun(whole: string, broken: string): Promise<void> {
  const key = (e: Event) => `${e.stage}:${e.step}`;
  const a = events(whole).filter((e) => e.event === 'step');
  const b = events(broken).filter((e) => e.event === 'step');
  expect(new Set(b.map(key)).size).toBe(b.length);
  expect(b.map(key)).toEqual(a.map(key));
  for (let i = 0; i < a.length; i++) expect(Math.abs(b[i]!.loss! - a[i]!.loss!), key(a[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(a[i]!.loss!)));
  // mask statistics too: the same masks events, field for field (the time aside)
  const masks = (dir: string) => events(dir).filter((e) => e.event === 'masks').map(({ time: _t, ...rest }: Event & { time?: string }) => rest);
  expect(masks(broken)).toEqual(masks(whole));
  const wa = (await readCheckpoint(whole)).params;
  const wb = (await readCheckpoint(broken)).params;
  expect([...wb.keys()]).toEqual([...wa.keys()]);
  for (const [k, v] of wa) expect(wb.get(k)!.data, k).toEqual(v.data);
}
