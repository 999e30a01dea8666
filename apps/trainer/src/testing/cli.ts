// Test helper: the built `sparse-train` run as a user runs it (a child process), and reading a run
// folder's metrics.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../cli/main.js';
import { packageRoot } from './dist.js';

export const cliPath = join(packageRoot, 'dist', 'cli.js');

export interface CLIResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCLI(args: string[], opts: { cwd?: string; input?: string | Uint8Array; env?: NodeJS.ProcessEnv; timeout?: number; stdio?: SpawnSyncOptions['stdio'] } = {}): CLIResult {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeout ?? 180_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.stdio ? { stdio: opts.stdio } : {}),
    env: { ...process.env, ...opts.env },
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export interface MetricEvent {
  event: string;
  stage?: number;
  step?: number;
  loss?: number;
  [k: string]: unknown;
}

/** The events of a run folder's metrics.jsonl (a line cut by a kill is skipped). */
export function metricEvents(dir: string): MetricEvent[] {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as MetricEvent];
      } catch {
        return [];
      }
    });
}

/**
 * Starts the CLI and calls `act` once `when` holds for the run folder's metrics (polled); resolves
 * with how the process ended and what it printed.
 */
export function runWatching(args: string[], dir: string, when: (events: MetricEvent[]) => boolean, act: (child: ChildProcess) => void, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CLIResult & { acted: boolean; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    let acted = false;
    const timer = setInterval(() => {
      if (!acted && when(metricEvents(dir))) {
        acted = true;
        act(child);
      }
    }, 15);
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearInterval(timer);
      resolve({ code, signal: sig, stdout, stderr, acted, pid: child.pid! });
    });
  });
}

/** Starts the CLI and sends `signal` once `when` holds for the run folder's metrics. */
export async function runAndSignal(args: string[], dir: string, when: (events: MetricEvent[]) => boolean, signal: NodeJS.Signals, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CLIResult & { sent: boolean; pid: number }> {
  const r = await runWatching(args, dir, when, (child) => child.kill(signal), opts);
  return { ...r, sent: r.acted };
}

/** Runs the CLI's main in this process with captured streams (faster than a child process). */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}
