// What checkpoints and exports store of an attention record, and how it is read back. The export's
// attention.json ({ format: 'sparse-attention/1', stage, label, method, config, state }) is what
// `sparse-train generate` applies: the method of @sparse/attention, its config, and its plain-JSON
// state (seer: each layer's trained gate with wq / wk as number arrays).

import { ArgumentError } from '@sparse/tensor';
import type { AttentionCheckpoint } from '../../run/checkpoint.js';
import type { AttentionRecord, AttentionState } from '../../run/context.js';
import { attentionMethodOf, gatesOf } from './hooks.js';

/** The file an export writes beside the model, and its format tag. */
export const ATTENTION_FILE = 'attention.json';
export const ATTENTION_FORMAT = 'sparse-attention/1';

/** What a checkpoint or an export stores of an attention record (plain JSON, a copy). */
export function attentionCheckpoint(rec: AttentionRecord): AttentionCheckpoint {
  return { stage: rec.stage, label: rec.label, method: rec.method, config: rec.config, state: structuredClone(rec.state) };
}

/** The contents of attention.json. */
export function attentionExport(rec: AttentionRecord): { format: typeof ATTENTION_FORMAT } & AttentionCheckpoint {
  return { format: ATTENTION_FORMAT, ...attentionCheckpoint(rec) };
}

/**
 * An attention record from a checkpoint's `attention` or an export's attention.json (the format tag, if
 * present, must be ours); checks that the method exists, its config parses and seer's gates are arrays.
 */
export function restoreAttention(saved: unknown, where: string): AttentionRecord {
  const r = saved as Partial<AttentionCheckpoint> & { format?: unknown };
  if (typeof r !== 'object' || r === null || typeof r.method !== 'string') throw new ArgumentError(`${where}: expected { method, config, state } of an attention stage`);
  if (r.format !== undefined && r.format !== ATTENTION_FORMAT) throw new ArgumentError(`${where}: format ${JSON.stringify(r.format)}, expected '${ATTENTION_FORMAT}'`);
  const config = (r.config ?? {}) as Record<string, unknown>;
  const state = (r.state ?? {}) as AttentionState;
  attentionMethodOf({ method: r.method, config }, where);
  if (state.gates !== undefined) {
    if (!Array.isArray(state.gates)) throw new ArgumentError(`${where}: state.gates must be an array (one gate per layer)`);
    for (const [i, g] of state.gates.entries()) {
      if (typeof g !== 'object' || g === null || !Array.isArray(g.wq) || !Array.isArray(g.wk)) throw new ArgumentError(`${where}: state.gates[${i}] needs wq and wk arrays`);
      if (g.wq.length !== g.heads * g.headDim * g.gateDim || g.wk.length !== g.kvHeads * 3 * g.headDim * g.gateDim) throw new ArgumentError(`${where}: state.gates[${i}] has wq / wk of the wrong length for its heads, headDim and gateDim`);
    }
    gatesOf(state);
  }
  return { stage: typeof r.stage === 'number' ? r.stage : -1, label: typeof r.label === 'string' ? r.label : 'attention', method: r.method, config, state };
}
