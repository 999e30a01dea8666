// Golden files: __fixtures__/hf/ was written by hand from the published formats (make-fixtures.mjs
// there, no code of ours). Our exports of the same weights must equal them field by field, and our
// loaders must read them.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getVariant, type AdapterState } from '@sparse/lora-variants';
import { loadPEFTAdapter } from '@sparse/lora-variants/node';
import { tensor, type Float32Tensor } from '@sparse/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { readCheckpoint } from './checkpoint.js';
import { hfAdapterLayout, hfConfigOf, saveHFCheckpoint, saveHFPEFTAdapter } from './hf.js';
import type { ModelSpec } from './types.js';

const FIXTURES = fileURLToPath(new URL('./__fixtures__/hf/', import.meta.url));

/** The fixture script's value of element i of the t-th tensor of a file. */
const fixtureValue = (t: number, i: number) => (((i * 5 + t * 3) % 17) - 8) / 16;

interface Entry {
  dtype: string;
  shape: number[];
  bytes: Buffer;
}

/** A safetensors file parsed by hand (not by our reader): header length, JSON header, raw bytes. */
function parseByHand(path: string): { entries: Map<string, Entry>; metadata: unknown } {
  const buf = readFileSync(path);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const entries = new Map<string, Entry>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    entries.set(name, { dtype: e.dtype, shape: e.shape, bytes: buf.subarray(8 + len + e.data_offsets[0], 8 + len + e.data_offsets[1]) });
  }
  return { entries, metadata: header.__metadata__ };
}

/** Same names, dtypes, shapes and bytes. */
function expectSameTensors(ours: string, golden: string): void {
  const a = parseByHand(ours);
  const b = parseByHand(golden);
  expect([...a.entries.keys()].sort()).toEqual([...b.entries.keys()].sort());
  for (const [name, e] of b.entries) {
    const o = a.entries.get(name)!;
    expect({ name, dtype: o.dtype, shape: o.shape }).toEqual({ name, dtype: e.dtype, shape: e.shape });
    expect(Buffer.compare(o.bytes, e.bytes), name).toBe(0);
  }
  expect(a.metadata).toEqual(b.metadata);
}

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

/**
 * Fields of PEFT's LoraConfig and its PeftConfig bases (peft/tuners/lora/config.py, peft/config.py),
 * the subset a LoRA adapter_config.json may carry without PEFT warning about or refusing unknown keys.
 */
const LORA_CONFIG_FIELDS = new Set([
  'peft_type', 'auto_mapping', 'base_model_name_or_path', 'revision', 'task_type', 'inference_mode',
  'r', 'target_modules', 'exclude_modules', 'lora_alpha', 'lora_dropout', 'fan_in_fan_out', 'bias', 'use_rslora',
  'modules_to_save', 'init_lora_weights', 'layers_to_transform', 'layers_pattern', 'rank_pattern', 'alpha_pattern',
  'megatron_config', 'megatron_core', 'loftq_config', 'use_dora', 'layer_replication', 'runtime_config', 'lora_bias',
]);

let dir: string;
beforeAll(async () => {
  await chooseBackend();
  dir = mkdtempSync(join(tmpdir(), 'sparse-hf-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Hugging Face checkpoints (golden files)', () => {
  it('reads the GPT-2 fixture: transformer. names, Conv1D [in, out] transposed to our [out, in]', async () => {
    const c = await readCheckpoint(join(FIXTURES, 'gpt2'));
    expect(c.source).toBe('hf-gpt2');
    expect(c.spec).toMatchObject({ architecture: 'gpt', vocab: 8, ctx: 4, d: 4, layers: 1, heads: 2, mlpRatio: 2 });
    // c_attn is the file's 5th tensor (t = 4), stored [in = 4, out = 12]; ours is [12, 4]
    const w = c.values.get('h.0.attn.c_attn.weight')!;
    for (let o = 0; o < 12; o++) for (let i = 0; i < 4; i++) expect(w[o * 4 + i]).toBe(fixtureValue(4, i * 12 + o));
    expect(Array.from(c.values.get('wte.weight')!)).toEqual(Array.from({ length: 32 }, (_, i) => fixtureValue(0, i)));
  });

  it('reads the Llama fixture: names as they are, Linear [out, in] as stored', async () => {
    const c = await readCheckpoint(join(FIXTURES, 'llama'));
    expect(c.source).toBe('hf-llama');
    expect(c.spec).toMatchObject({ architecture: 'llama', vocab: 8, d: 4, layers: 1, heads: 2, kvHeads: 1, mlpHidden: 6, tiedEmbeddings: true });
    expect(Array.from(c.values.get('model.layers.0.self_attn.q_proj.weight')!)).toEqual(Array.from({ length: 16 }, (_, i) => fixtureValue(2, i)));
  });

  it.each(['gpt2', 'llama'])('the %s base export of the fixture weights equals the fixture (keys, shapes, dtypes, values, config.json)', async (name) => {
    const c = await readCheckpoint(join(FIXTURES, name));
    const out = join(dir, `base-${name}`);
    await saveHFCheckpoint(out, c.spec, c.values);
    expectSameTensors(join(out, 'model.safetensors'), join(FIXTURES, name, 'model.safetensors'));
    expect(json(join(out, 'config.json'))).toEqual(json(join(FIXTURES, name, 'config.json')));
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors']);
  });

  it('refuses a Hugging Face config for a mixture-of-experts model', () => {
    expect(() => hfConfigOf({ architecture: 'gpt', vocab: 8, ctx: 4, d: 4, layers: 1, heads: 2, mlpRatio: 2, moe: { experts: 2, topK: 1 } })).toThrow(/mixture-of-experts/);
  });
});

/** LoRA states over our module names, their tensors numbered as the fixture file lists them. */
function loraStates(variant: 'lora' | 'sqft', shapes: Record<string, [number, number]>): Record<string, AdapterState> {
  const out: Record<string, AdapterState> = {};
  let t = 0;
  for (const [m, [o, i]] of Object.entries(shapes)) {
    const a = tensor(Float32Array.from({ length: 2 * i }, (_, k) => fixtureValue(t, k)), [2, i]);
    const b = tensor(Float32Array.from({ length: o * 2 }, (_, k) => fixtureValue(t + 1, k)), [o, 2]);
    t += 2;
    out[m] = { variant, shape: [o, i], config: { r: 2, alpha: 4, rslora: false, dropout: 0 }, params: { lora_A: a as Float32Tensor, lora_B: b as Float32Tensor } };
  }
  return out;
}

const GPT_SPEC: ModelSpec = { architecture: 'gpt', vocab: 8, ctx: 4, d: 4, layers: 1, heads: 2, mlpRatio: 2 };
const LLAMA_SPEC: ModelSpec = { architecture: 'llama', vocab: 8, ctx: 4, d: 4, layers: 1, heads: 2, kvHeads: 1, mlpHidden: 6, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: true };

describe('PEFT adapters (golden files)', () => {
  const cases = [
    ['gpt2-lora', GPT_SPEC, 'lora', { 'h.0.attn.c_attn': [12, 4], 'h.0.attn.c_proj': [4, 4] }, 'gpt2', ['adapter_config.json', 'adapter_model.safetensors']],
    ['llama-sqft', LLAMA_SPEC, 'sqft', { 'model.layers.0.self_attn.q_proj': [4, 4], 'model.layers.0.self_attn.v_proj': [2, 4] }, 'models/tiny-llama', ['adapter_config.json', 'adapter_model.safetensors', 'sparse_adapter_config.json']],
  ] as const;

  it.each(cases)('our export of the %s weights equals the fixture', async (name, spec, variant, shapes, base, files) => {
    const out = join(dir, `adapter-${name}`);
    await saveHFPEFTAdapter(out, spec, loraStates(variant, shapes as unknown as Record<string, [number, number]>), base);
    expect(readdirSync(out).sort()).toEqual([...files]);
    expectSameTensors(join(out, 'adapter_model.safetensors'), join(FIXTURES, name, 'adapter_model.safetensors'));
    const cfg = json(join(out, 'adapter_config.json'));
    expect(cfg).toEqual(json(join(FIXTURES, name, 'adapter_config.json')));
    for (const key of Object.keys(cfg)) expect(LORA_CONFIG_FIELDS.has(key), key).toBe(true);
    if (variant === 'sqft') expect(json(join(out, 'sparse_adapter_config.json'))).toEqual(json(join(FIXTURES, name, 'sparse_adapter_config.json')));
  });

  it('our loader reads the fixtures', async () => {
    const g = await loadPEFTAdapter(join(FIXTURES, 'gpt2-lora'));
    expect(g).toMatchObject({ variant: 'lora', fanInFanOut: true, baseModelNameOrPath: 'gpt2', taskType: 'CAUSAL_LM', config: { r: 2, alpha: 4 } });
    expect(g.modules['transformer.h.0.attn.c_attn']!.shape).toEqual([12, 4]);
    const l = await loadPEFTAdapter(join(FIXTURES, 'llama-sqft'));
    expect(l).toMatchObject({ variant: 'sqft', fanInFanOut: false, baseModelNameOrPath: 'models/tiny-llama' });
    expect(Object.keys(l.modules).sort()).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj']);
    expect(l.modules['model.layers.0.self_attn.v_proj']!.shape).toEqual([2, 4]);
  });

  it('GPT-2: merging the fixture adapter our way equals PEFT\'s Conv1D merge W + (B A)^T · alpha / r on the stored weight', async () => {
    const c = await readCheckpoint(join(FIXTURES, 'gpt2'));
    const a = await loadPEFTAdapter(join(FIXTURES, 'gpt2-lora'));
    const state = a.modules['transformer.h.0.attn.c_attn']!;
    const ours = getVariant('lora').merge(tensor(c.values.get('h.0.attn.c_attn.weight')!, [12, 4]), state, { densify: true }).data as Float32Array;
    // PEFT: the Conv1D weight is stored [in = 4, out = 12] (fixture tensor t = 4); lora_A [2, 4] (t = 0), lora_B [12, 2] (t = 1)
    for (let i = 0; i < 4; i++) {
      for (let o = 0; o < 12; o++) {
        let ba = 0;
        for (let k = 0; k < 2; k++) ba += fixtureValue(1, o * 2 + k) * fixtureValue(0, k * 4 + i);
        expect(ours[o * 4 + i]).toBeCloseTo(fixtureValue(4, i * 12 + o) + ba * (4 / 2), 6);
      }
    }
  });

  it('names an adapter\'s modules as Hugging Face does and lists exactly them as target_modules', () => {
    const s = { x: 1 };
    expect(hfAdapterLayout(GPT_SPEC, { 'h.0.mlp.c_fc': s, 'h.0.attn.c_attn': s })).toEqual({
      modules: { 'transformer.h.0.attn.c_attn': s, 'transformer.h.0.mlp.c_fc': s },
      targetModules: ['transformer.h.0.attn.c_attn', 'transformer.h.0.mlp.c_fc'],
      fanInFanOut: true,
    });
    expect(hfAdapterLayout(LLAMA_SPEC, { 'model.layers.0.mlp.up_proj': s })).toEqual({ modules: { 'model.layers.0.mlp.up_proj': s }, targetModules: ['model.layers.0.mlp.up_proj'], fanInFanOut: false });
  });
});
