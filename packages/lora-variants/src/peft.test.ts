import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, Random, serializeSafetensors, tensor } from '@sparse/tensor';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPEFTAdapter, savePEFTAdapter } from './node.js';
import { fromPEFTFiles, PEFTFormatError, toPEFTFiles } from './peft.js';
import { getVariant, type AdapterState } from './variants/index.js';

// A PEFT LoRA folder as Python PEFT writes it for a Llama-style model (LoRAConfig.to_dict keys; tensor
// names from get_peft_model_state_dict, adapter name stripped): r = 8, q_proj [64 <- 64], v_proj [32 <- 64].
const FIXTURE_CONFIG = {
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: 'meta-llama/Llama-2-7b-hf',
  bias: 'none',
  fan_in_fan_out: false,
  inference_mode: true,
  init_lora_weights: true,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 16,
  lora_dropout: 0.05,
  megatron_config: null,
  megatron_core: 'megatron.core',
  modules_to_save: null,
  peft_type: 'LORA',
  r: 8,
  rank_pattern: {},
  revision: null,
  target_modules: ['v_proj', 'q_proj'],
  task_type: 'CAUSAL_LM',
  use_dora: false,
  use_rslora: false,
};
const SHAPES: Record<string, number[]> = {
  'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': [8, 64],
  'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': [64, 8],
  'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight': [8, 64],
  'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight': [32, 8],
};
function fixtureTensors(shapes = SHAPES) {
  const rng = new Random(5);
  return Object.fromEntries(Object.entries(shapes).map(([n, s]) => [n, tensor(Float32Array.from({ length: s[0]! * (s[1] ?? 1) }, () => rng.normal()), s)]));
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lora-variants-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeFolder(config: unknown, tensors = fixtureTensors()) {
  await writeFile(join(dir, 'adapter_config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  await writeFile(join(dir, 'adapter_model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));
}

describe('PEFT fixture', () => {
  it('loads the modules, shapes, scaling and values', async () => {
    const tensors = fixtureTensors();
    await writeFolder(FIXTURE_CONFIG, tensors);
    const a = await loadPEFTAdapter(dir);
    expect(a.variant).toBe('lora');
    expect(a.config).toEqual({ r: 8, alpha: 16, rslora: false, dropout: 0.05 });
    expect(a.baseModelNameOrPath).toBe('meta-llama/Llama-2-7b-hf');
    expect(a.taskType).toBe('CAUSAL_LM');
    expect(Object.keys(a.modules).sort()).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj']);
    const v = a.modules['model.layers.0.self_attn.v_proj']!;
    expect(v.shape).toEqual([32, 64]);
    expect(v.params.lora_B!.data).toEqual(tensors['base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight']!.data);
    // ΔW of the loaded adapter is (16 / 8) · B A.
    const d = getVariant('lora').delta(v, tensor(new Float32Array(32 * 64), [32, 64]));
    let ref = 0;
    for (let t = 0; t < 8; t++) ref += v.params.lora_B!.data[3 * 8 + t]! * v.params.lora_A!.data[t * 64 + 5]!;
    expect(d.data[3 * 64 + 5]).toBeCloseTo(2 * ref, 5);
  });

  it('round-trips: what we save has PEFT names, keys and F32 tensors, and loads back equal', async () => {
    await writeFolder(FIXTURE_CONFIG);
    const a = await loadPEFTAdapter(dir);
    const out = join(dir, 'saved');
    await savePEFTAdapter(out, a.modules, { baseModelNameOrPath: a.baseModelNameOrPath, taskType: a.taskType });
    expect((await readdir(out)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']); // no temporary files left
    const cfg = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    for (const key of ['peft_type', 'r', 'lora_alpha', 'target_modules', 'lora_dropout', 'bias', 'fan_in_fan_out', 'use_rslora', 'task_type', 'base_model_name_or_path', 'inference_mode', 'init_lora_weights', 'modules_to_save']) {
      expect(cfg).toHaveProperty(key);
    }
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, lora_dropout: 0.05, bias: 'none', use_rslora: false, target_modules: ['q_proj', 'v_proj'] });
    const st = parseSafetensors(new Uint8Array(await readFile(join(out, 'adapter_model.safetensors'))));
    expect([...st.tensorNames].sort()).toEqual(Object.keys(SHAPES).sort());
    for (const [n, s] of Object.entries(SHAPES)) expect(st.entry(n)).toMatchObject({ dtype: 'F32', shape: s });
    expect(st.metadata).toEqual({ format: 'pt' });
    const b = await loadPEFTAdapter(out);
    expect(b.config).toEqual(a.config);
    for (const m of Object.keys(a.modules)) expect(b.modules[m]!.params).toEqual(a.modules[m]!.params);
  });

  it('keeps rsLoRA, SQFT and SPP apart in the same layout', () => {
    const rng = new Random(2);
    const base = tensor(Float32Array.from({ length: 24 }, () => rng.normal()), [4, 6]);
    for (const [variant, cfg] of [['lora', { r: 2, rslora: true }], ['sqft', { r: 2 }], ['spp', { colInit: 0.5 }]] as const) {
      const s = getVariant(variant).init(base, cfg, rng);
      const files = toPEFTFiles({ 'h.0.attn.c_attn': s });
      if (variant === 'spp') {
        expect(files.config.peft_type).toBe('SPP');
        expect(files.config.sparse_variant).toBe('spp');
        expect(Object.keys(files.tensors).sort()).toEqual(['base_model.model.h.0.attn.c_attn.spp_col.weight', 'base_model.model.h.0.attn.c_attn.spp_row.weight']);
      } else {
        expect(files.config.peft_type).toBe('LORA');
        // SQFT's own key lives in the sidecar, never in adapter_config.json (PEFT's LoraConfig lacks it)
        expect(files.config.sqft_sparse_merge).toBeUndefined();
        expect(files.sidecar).toEqual(variant === 'sqft' ? { sparse_variant: 'sqft', sqft_sparse_merge: true } : null);
      }
      const st = parseSafetensors(serializeSafetensors(files.tensors));
      const back = fromPEFTFiles(JSON.parse(JSON.stringify(files.config)), st, {}, files.sidecar ?? undefined);
      expect(back.variant).toBe(variant);
      expect(back.modules['h.0.attn.c_attn']).toEqual(s);
    }
  });
});

describe('SQFT sidecar and fan_in_fan_out', () => {
  it('saves SQFT as a plain LoRA adapter_config.json plus sparse_adapter_config.json, and loads it back as SQFT', async () => {
    const base = tensor(Float32Array.from({ length: 24 }, (_, i) => i - 12), [4, 6]);
    const s = getVariant('sqft').init(base, { r: 2 }, new Random(3));
    await savePEFTAdapter(dir, { 'model.layers.0.self_attn.q_proj': s });
    expect((await readdir(dir)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'sparse_adapter_config.json']);
    const cfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).not.toHaveProperty('sqft_sparse_merge');
    expect(cfg).not.toHaveProperty('sparse_variant');
    expect(JSON.parse(await readFile(join(dir, 'sparse_adapter_config.json'), 'utf8'))).toEqual({ sparse_variant: 'sqft', sqft_sparse_merge: true });
    expect((await loadPEFTAdapter(dir)).variant).toBe('sqft');
    // the same folder saved again as plain LoRA drops the stale sidecar
    await savePEFTAdapter(dir, { 'model.layers.0.self_attn.q_proj': { ...s, variant: 'lora' } });
    expect((await readdir(dir)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect((await loadPEFTAdapter(dir)).variant).toBe('lora');
  });

  it('still reads folders that kept sqft_sparse_merge in adapter_config.json', async () => {
    await writeFolder({ ...FIXTURE_CONFIG, sqft_sparse_merge: true });
    expect((await loadPEFTAdapter(dir)).variant).toBe('sqft');
  });

  it('rejects a sidecar naming another variant', async () => {
    await writeFolder(FIXTURE_CONFIG);
    await writeFile(join(dir, 'sparse_adapter_config.json'), JSON.stringify({ sparse_variant: 'spp' }));
    const error = await loadPEFTAdapter(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PEFTFormatError);
    expect((error as PEFTFormatError).file).toBe(join(dir, 'sparse_adapter_config.json'));
    expect((error as PEFTFormatError).field).toBe('sparse_variant');
  });

  it('writes fan_in_fan_out when asked and keeps lora_A [r, in], lora_B [out, r]', () => {
    const s = getVariant('lora').init(tensor(new Float32Array(12 * 4), [12, 4]), { r: 2 }, new Random(1));
    const files = toPEFTFiles({ 'transformer.h.0.attn.c_attn': s }, { fanInFanOut: true });
    expect(files.config.fan_in_fan_out).toBe(true);
    expect(files.tensors['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight']!.shape).toEqual([2, 4]);
    expect(files.tensors['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight']!.shape).toEqual([12, 2]);
    const back = fromPEFTFiles(files.config, parseSafetensors(serializeSafetensors(files.tensors)));
    expect(back.fanInFanOut).toBe(true);
    expect(back.modules['transformer.h.0.attn.c_attn']!.shape).toEqual([12, 4]);
    expect(toPEFTFiles({ a: s }).config.fan_in_fan_out).toBe(false);
  });
});

describe('malformed adapters throw PEFTFormatError naming the file and field', () => {
  const cases: [string, unknown, Record<string, number[]> | undefined, RegExp, string][] = [
    ['missing r', { ...FIXTURE_CONFIG, r: undefined }, undefined, /adapter_config\.json: r: missing/, 'r'],
    ['bad lora_alpha', { ...FIXTURE_CONFIG, lora_alpha: 'x' }, undefined, /lora_alpha: expected a number/, 'lora_alpha'],
    ['unknown peft_type', { ...FIXTURE_CONFIG, peft_type: 'IA3' }, undefined, /peft_type: unsupported "IA3"/, 'peft_type'],
    ['DoRA', { ...FIXTURE_CONFIG, use_dora: true }, undefined, /use_dora/, 'use_dora'],
    ['rank_pattern', { ...FIXTURE_CONFIG, rank_pattern: { q_proj: 4 } }, undefined, /rank_pattern/, 'rank_pattern'],
    ['invalid JSON', '{"r": 8,', undefined, /not valid JSON/, '(json)'],
    ['A of the wrong rank', FIXTURE_CONFIG, { ...SHAPES, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': [4, 64] }, /q_proj\.lora_A\.weight: shape \[4, 64\] should be \[r = 8, in\]/, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'],
    ['B of the wrong rank', FIXTURE_CONFIG, { ...SHAPES, 'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight': [32, 7] }, /v_proj\.lora_B\.weight: shape \[32, 7\]/, 'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight'],
    ['a missing B', FIXTURE_CONFIG, { 'base_model.model.fc.lora_A.weight': [8, 4] }, /fc\.lora_B\.weight: missing/, 'base_model.model.fc.lora_B.weight'],
    ['a foreign tensor', FIXTURE_CONFIG, { ...SHAPES, 'base_model.model.lm_head.weight': [4, 4] }, /lm_head\.weight: not an adapter tensor name/, 'base_model.model.lm_head.weight'],
  ];
  it.each(cases)('%s', async (_label, config, shapes, message, fieldName) => {
    await writeFolder(config, shapes ? fixtureTensors(shapes) : undefined);
    const error = await loadPEFTAdapter(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PEFTFormatError);
    expect((error as Error).message).toMatch(message);
    expect((error as PEFTFormatError).field).toBe(fieldName);
    const file = /\.weight$/.test(fieldName) ? 'adapter_model.safetensors' : 'adapter_config.json';
    expect((error as PEFTFormatError).file).toBe(join(dir, file));
  });

  it('refuses to save modules with different variants or configs into one folder', () => {
    const base = tensor(new Float32Array(8), [2, 4]);
    const mods: Record<string, AdapterState> = {
      a: getVariant('lora').init(base, { r: 2 }, new Random(0)),
      b: getVariant('lora').init(base, { r: 1 }, new Random(0)),
    };
    expect(() => toPEFTFiles(mods)).toThrow(/one variant and config/);
  });

  it('rejects LoRA tensors in an SPP folder', () => {
    const st = parseSafetensors(serializeSafetensors(fixtureTensors()));
    expect(() => fromPEFTFiles({ peft_type: 'SPP' }, st)).toThrow(/adapter_model\.safetensors: base_model\.model\.model\.layers\.0\.self_attn\.\w_proj: LoRA tensors in an SPP adapter/);
  });
});
