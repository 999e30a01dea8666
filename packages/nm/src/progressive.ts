// Progressive gradient flow (Bambhaniya et al., "Progressive Gradient Flow for Robust N:M Sparsity
// Training in Transformers", 2024): the schedules of its two decaying recipes, on plain numbers.
//   - MDGF (mask decay): the forward pass uses W * (mask + beta_t * (1 - mask)); the pruned entries'
//     factor beta_t falls from 1 to 0, linearly (beta_t = max(0, 1 - rate * t)) or exponentially
//     (beta_t = exp(-rate * t)), t counted from the start of the sparse phase. maskDecayFactor below.
//   - SDGF (structure decay): the mask stays binary, but its N:M pattern tightens over equal frames
//     of the sparse phase. Stepwise keeps M and lowers N: (M-1):M, M/2:M, M/4:M, ..., N:M (1:8 goes
//     7:8, 4:8, 2:8, 1:8). Geometric keeps the density N/M and shrinks the group: 8N:8M, 4N:4M,
//     2N:2M, N:M (1:8 goes 8:64, 4:32, 2:16, 1:8). structureDecaySchedule below.
// differs: the paper's dense warm-up and binary fine-tune phases are not part of this schedule (put a
// dense stage before and a hard-mask stage after); for an N that is not M over a power of two the
// stepwise list ends with N:M itself after the halvings above N (3:8 goes 7:8, 4:8, 3:8), where the
// authors' frame count (log2(M/N) + 1, rounded down) would stop short of N.
import { ArgumentError } from '@sparse/tensor';
import { checkNM } from './internal.js';

export interface MaskDecayOptions {
  /** 'linear': beta = max(0, 1 - rate * step); 'exponential': beta = exp(-rate * step). */
  shape: 'linear' | 'exponential';
  /** Decay per step, > 0. */
  rate: number;
}

/** MDGF's forward factor of the pruned entries at `step` (0-based) of the sparse phase: 1 at step 0, falling to 0. */
export function maskDecayFactor(step: number, opts: MaskDecayOptions): number {
  const where = 'maskDecayFactor';
  if (!Number.isFinite(step) || step < 0) throw new ArgumentError(`${where}: step must be a non-negative number, got ${step}`);
  if (!(typeof opts?.rate === 'number' && Number.isFinite(opts.rate) && opts.rate > 0)) throw new ArgumentError(`${where}: rate must be a positive number, got ${String(opts?.rate)}`);
  if (opts.shape === 'linear') return Math.max(0, 1 - opts.rate * step);
  if (opts.shape === 'exponential') return Math.exp(-opts.rate * step);
  throw new ArgumentError(`${where}: shape must be 'linear' or 'exponential', got ${JSON.stringify(opts.shape)}`);
}

/** One frame of SDGF: from `start` (0-based step, inclusive) the mask is n:m. */
export interface StructurePhase {
  start: number;
  n: number;
  m: number;
}

export interface StructureDecayOptions {
  /** The final pattern. */
  n: number;
  m: number;
  /** 'stepwise' lowers N at fixed M; 'geometric' shrinks the group at fixed density N/M. */
  kind: 'stepwise' | 'geometric';
  /** Steps of the sparse phase, split into equal frames. */
  steps: number;
  /** Geometric only: how many frames (default 4, the paper's 8N:8M -> N:M). */
  frames?: number;
}

/** The patterns of SDGF in order, loosest first, the last one n:m. */
export function structureDecayPatterns(opts: Omit<StructureDecayOptions, 'steps'>): { n: number; m: number }[] {
  const where = 'structureDecayPatterns';
  checkNM(where, opts);
  const { n, m } = opts;
  if (opts.kind === 'stepwise') {
    const ns = [m - 1];
    for (let k = Math.floor(m / 2); k > n; k = Math.floor(k / 2)) if (k < ns.at(-1)!) ns.push(k);
    if (ns.at(-1)! !== n) ns.push(n);
    return ns.filter((v) => v >= n).map((v) => ({ n: v, m }));
  }
  if (opts.kind === 'geometric') {
    const frames = opts.frames ?? 4;
    if (!Number.isSafeInteger(frames) || frames < 1 || frames > 16) throw new ArgumentError(`${where}: frames must be an integer in [1, 16], got ${String(opts.frames)}`);
    return Array.from({ length: frames }, (_, k) => {
      const f = 2 ** (frames - 1 - k);
      return { n: n * f, m: m * f };
    });
  }
  throw new ArgumentError(`${where}: kind must be 'stepwise' or 'geometric', got ${JSON.stringify(opts.kind)}`);
}

/** SDGF's frames over `steps`: frame k of F starts at floor(k * steps / F). */
export function structureDecaySchedule(opts: StructureDecayOptions): StructurePhase[] {
  const where = 'structureDecaySchedule';
  if (!Number.isSafeInteger(opts?.steps) || opts.steps < 1) throw new ArgumentError(`${where}: steps must be a positive integer, got ${String(opts?.steps)}`);
  const patterns = structureDecayPatterns(opts);
  return patterns.map((p, k) => ({ start: Math.floor((k * opts.steps) / patterns.length), ...p }));
}

/** The frame in force at `step` (0-based): the last one whose start is <= step. */
export function structurePhaseAt(schedule: readonly StructurePhase[], step: number): StructurePhase {
  if (schedule.length === 0) throw new ArgumentError('structurePhaseAt: empty schedule');
  if (!Number.isFinite(step) || step < 0) throw new ArgumentError(`structurePhaseAt: step must be a non-negative number, got ${step}`);
  let phase = schedule[0]!;
  for (const p of schedule) if (p.start <= step) phase = p;
  return phase;
}
