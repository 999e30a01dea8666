// Run checkpoints. A checkpoint is one safetensors file (parameters, masks, adapter tensors,
// optimizer moments, teacher snapshots) plus checkpoints/latest.json, which names that file and the
// position to continue from. Both are written atomically and latest.json last, so a kill at any
// moment leaves the previous checkpoint or the new one, never a mix. Typed arrays inside the stage
// state (a stage's own optimizer, supports, masks) go into the safetensors file with their dtype, so
// int32 indices stay exact; latest.json keeps a { $tensor, dtype } reference in their place.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { maskFromBooleans, maskToBooleans, type Mask } from '@sparse/masks';
import { ArgumentError, tensor } from '@sparse/tensor';
import { atomicWriteFile, openSafetensors, writeSafetensorsFile } from '@sparse/tensor/node';
import type { ModelSpec } from '../model/types.js';
import type { AdamState } from '../train/adam.js';
import type { AdapterRecord, AttentionRecord, ReportAccumulator } from './context.js';

/** An installed activation sparsifier: what rebuilds it (the method's restore takes each site's state). */
export interface ActivationCheckpoint {
  stage: number;
  label: string;
  method: string;
  config: Record<string, unknown>;
  states: Record<string, unknown>;
}

/** The installed sparse attention (an attention stage's method, config and plain-JSON state: seer's gates). */
export type AttentionCheckpoint = AttentionRecord;

/** An attached adapter: how it was attached (to rebuild it) and its tensors' values. */
export interface AdapterCheckpoint extends Omit<AdapterRecord, 'model'> {
  /** Per layer, per param name: values. */
  layers: Record<string, Record<string, Float32Array>>;
}

export interface CheckpointContent {
  /** The model's spec (createModel rebuilds it). */
  spec: ModelSpec;
  /** Continue at stage `stage` with `step` of its steps already done. */
  next: { stage: number; step: number };
  /** Stage-specific JSON (batch sampler state, ...). */
  stageState?: Record<string, unknown>;
  metricsBytes: number;
  report: ReportAccumulator;
  pattern?: { n: number; m: number };
  calibration?: { windows: number; batch: number };
  /** The installed activation sparsifier: its method, config and each site's state (plain JSON). */
  activation?: ActivationCheckpoint;
  /** The installed sparse attention (plain JSON). */
  attention?: AttentionCheckpoint;
  params: Map<string, { data: Float32Array; shape: number[] }>;
  masks: Map<string, Mask>;
  adapter?: AdapterCheckpoint;
  optimizer?: AdamState;
  snapshots: Map<number, Map<string, Float32Array>>;
}

interface LatestJSON {
  version: 1;
  spec: ModelSpec;
  file: string;
  next: { stage: number; step: number };
  stageState?: Record<string, unknown>;
  metricsBytes: number;
  report: ReportAccumulator;
  pattern?: { n: number; m: number };
  calibration?: { windows: number; batch: number };
  activation?: ActivationCheckpoint;
  attention?: AttentionCheckpoint;
  paramShapes: Record<string, number[]>;
  masks: Record<string, number[]>;
  adapter?: Omit<AdapterCheckpoint, 'layers'> & { layers: Record<string, Record<string, number[]>> };
  optimizer?: { t: number; shapes: Record<string, number[]>; since?: Record<string, number> };
  snapshots: number[];
}

/** The plain-JSON part of a checkpoint, the same in memory and in latest.json. */
type JSONPart = Pick<CheckpointContent, 'spec' | 'next' | 'stageState' | 'metricsBytes' | 'report' | 'pattern' | 'calibration' | 'activation' | 'attention'>;

function jsonPart(x: JSONPart): JSONPart {
  return {
    spec: x.spec,
    next: x.next,
    ...(x.stageState ? { stageState: x.stageState } : {}),
    metricsBytes: x.metricsBytes,
    report: x.report,
    ...(x.pattern ? { pattern: x.pattern } : {}),
    ...(x.calibration ? { calibration: x.calibration } : {}),
    ...(x.activation ? { activation: x.activation } : {}),
    ...(x.attention ? { attention: x.attention } : {}),
  };
}

/** Typed arrays a stage state may hold; each becomes one tensor entry of the checkpoint file. */
export type StateArray = Float32Array | Int32Array | Uint8Array;

interface TensorRef {
  $tensor: string;
  dtype: 'float32' | 'int32' | 'uint8';
}

function isTensorRef(x: unknown): x is TensorRef {
  return typeof x === 'object' && x !== null && typeof (x as TensorRef).$tensor === 'string' && Object.keys(x).length === 2 && 'dtype' in x;
}

/** The stage state with every typed array replaced by a reference to a new `state/<k>` entry. */
function stateToJSON(x: unknown, entries: Record<string, ReturnType<typeof tensor>>, where: string, count = { n: 0 }): unknown {
  if (x instanceof Float32Array || x instanceof Int32Array || x instanceof Uint8Array) {
    const name = `state/${count.n++}`;
    entries[name] = tensor(x, [x.length]);
    return { $tensor: name, dtype: x instanceof Float32Array ? 'float32' : x instanceof Int32Array ? 'int32' : 'uint8' } satisfies TensorRef;
  }
  if (ArrayBuffer.isView(x)) throw new ArgumentError(`checkpoint: ${where} is a ${x.constructor.name}; stage states hold Float32Array, Int32Array or Uint8Array`);
  if (Array.isArray(x)) return x.map((v, i) => stateToJSON(v, entries, `${where}[${i}]`, count));
  if (typeof x === 'object' && x !== null) return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, stateToJSON(v, entries, `${where}.${k}`, count)]));
  return x;
}

async function stateFromJSON(x: unknown, read: (ref: TensorRef) => Promise<StateArray>): Promise<unknown> {
  if (isTensorRef(x)) return read(x);
  if (Array.isArray(x)) return Promise.all(x.map((v) => stateFromJSON(v, read)));
  if (typeof x === 'object' && x !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = await stateFromJSON(v, read);
    return out;
  }
  return x;
}

export const CHECKPOINT_DIR = 'checkpoints';
const LATEST = 'latest.json';

export async function writeCheckpoint(runDir: string, c: CheckpointContent): Promise<string> {
  const dir = join(runDir, CHECKPOINT_DIR);
  mkdirSync(dir, { recursive: true });
  const seq = Date.now().toString(36) + process.hrtime.bigint().toString(36).slice(-4);
  const file = `ckpt-${String(c.next.stage).padStart(3, '0')}-${String(c.next.step).padStart(7, '0')}-${seq}.safetensors`;
  const entries: Record<string, ReturnType<typeof tensor>> = {};
  const paramShapes: Record<string, number[]> = {};
  for (const [k, v] of c.params) {
    entries[`param/${k}`] = tensor(v.data, v.shape);
    paramShapes[k] = v.shape;
  }
  const masks: Record<string, number[]> = {};
  for (const [k, m] of c.masks) {
    entries[`mask/${k}`] = tensor(Uint8Array.from(maskToBooleans(m), (b) => (b ? 1 : 0)), [...m.shape]);
    masks[k] = [...m.shape];
  }
  let adapter: LatestJSON['adapter'];
  if (c.adapter) {
    const layers: Record<string, Record<string, number[]>> = {};
    for (const [layer, ps] of Object.entries(c.adapter.layers)) {
      layers[layer] = {};
      for (const [p, v] of Object.entries(ps)) {
        entries[`adapter/${layer}/${p}`] = tensor(v, [v.length]);
        layers[layer][p] = [v.length];
      }
    }
    adapter = { ...c.adapter, layers };
  }
  let optimizer: LatestJSON['optimizer'];
  if (c.optimizer) {
    const shapes: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(c.optimizer.m)) {
      entries[`opt/m/${k}`] = tensor(v.data, v.shape);
      entries[`opt/v/${k}`] = tensor(c.optimizer.v[k]!.data, v.shape);
      shapes[k] = v.shape;
    }
    optimizer = { t: c.optimizer.t, shapes, ...(c.optimizer.since ? { since: c.optimizer.since } : {}) };
  }
  for (const [i, snap] of c.snapshots) for (const [k, v] of snap) entries[`snap/${i}/${k}`] = tensor(v, [v.length]);
  const stageState = c.stageState ? (stateToJSON(c.stageState, entries, 'stageState') as Record<string, unknown>) : undefined;
  await writeSafetensorsFile(join(dir, file), entries);
  const latest: LatestJSON = {
    version: 1,
    file,
    ...jsonPart(c),
    ...(stageState ? { stageState } : {}),
    paramShapes,
    masks,
    ...(adapter ? { adapter } : {}),
    ...(optimizer ? { optimizer } : {}),
    snapshots: [...c.snapshots.keys()],
  };
  await atomicWriteFile(join(dir, LATEST), JSON.stringify(latest));
  // older checkpoint files are garbage once latest.json names the new one
  for (const f of readdirSync(dir)) if (f.startsWith('ckpt-') && f !== file) rmSync(join(dir, f), { force: true });
  return join(dir, file);
}

export function hasCheckpoint(runDir: string): boolean {
  return existsSync(join(runDir, CHECKPOINT_DIR, LATEST));
}

export async function readCheckpoint(runDir: string): Promise<CheckpointContent> {
  const latestPath = join(runDir, CHECKPOINT_DIR, LATEST);
  let latest: LatestJSON;
  try {
    latest = JSON.parse(readFileSync(latestPath, 'utf8')) as LatestJSON;
  } catch (err) {
    throw new ArgumentError(`cannot read checkpoint ${latestPath}: ${(err as Error).message}`);
  }
  if (latest.version !== 1) throw new ArgumentError(`checkpoint ${latestPath}: unknown version ${String(latest.version)}`);
  const reader = await openSafetensors(join(runDir, CHECKPOINT_DIR, latest.file));
  try {
    const f32 = async (name: string): Promise<Float32Array> => {
      const t = await reader.readTensor(name);
      if (!(t.data instanceof Float32Array)) throw new ArgumentError(`checkpoint ${latest.file}: ${name} is not float32`);
      return t.data;
    };
    const params = new Map<string, { data: Float32Array; shape: number[] }>();
    for (const [k, shape] of Object.entries(latest.paramShapes)) params.set(k, { data: await f32(`param/${k}`), shape });
    const masks = new Map<string, Mask>();
    for (const [k, shape] of Object.entries(latest.masks)) {
      const t = await reader.readTensor(`mask/${k}`);
      masks.set(k, maskFromBooleans(Array.from(t.data as Uint8Array, (b) => b !== 0), shape));
    }
    let adapter: AdapterCheckpoint | undefined;
    if (latest.adapter) {
      const layers: AdapterCheckpoint['layers'] = {};
      for (const [layer, ps] of Object.entries(latest.adapter.layers)) {
        layers[layer] = {};
        for (const p of Object.keys(ps)) layers[layer][p] = await f32(`adapter/${layer}/${p}`);
      }
      adapter = { ...latest.adapter, layers };
    }
    let optimizer: AdamState | undefined;
    if (latest.optimizer) {
      optimizer = { t: latest.optimizer.t, m: {}, v: {}, ...(latest.optimizer.since ? { since: latest.optimizer.since } : {}) };
      for (const [k, shape] of Object.entries(latest.optimizer.shapes)) {
        optimizer.m[k] = { data: await f32(`opt/m/${k}`), shape };
        optimizer.v[k] = { data: await f32(`opt/v/${k}`), shape };
      }
    }
    const snapshots = new Map<number, Map<string, Float32Array>>();
    for (const i of latest.snapshots) {
      const snap = new Map<string, Float32Array>();
      for (const k of Object.keys(latest.paramShapes)) snap.set(k, await f32(`snap/${i}/${k}`));
      snapshots.set(i, snap);
    }
    const stageState = latest.stageState
      ? ((await stateFromJSON(latest.stageState, async (ref) => {
          const t = await reader.readTensor(ref.$tensor);
          const ok = ref.dtype === 'float32' ? t.data instanceof Float32Array : ref.dtype === 'int32' ? t.data instanceof Int32Array : t.data instanceof Uint8Array;
          if (!ok || t.dtype !== ref.dtype) throw new ArgumentError(`checkpoint ${latest.file}: ${ref.$tensor} is ${t.dtype}, latest.json says ${ref.dtype}`);
          return t.data as StateArray;
        })) as Record<string, unknown>)
      : undefined;
    return {
      ...jsonPart(latest),
      ...(stageState ? { stageState } : {}),
      params,
      masks,
      ...(adapter ? { adapter } : {}),
      ...(optimizer ? { optimizer } : {}),
      snapshots,
    };
  } finally {
    await reader.close();
  }
}
