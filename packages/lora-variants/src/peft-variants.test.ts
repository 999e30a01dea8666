import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArgumentError, parseSafetensors, Random, serializeSafetensors, tensor, type Float32Tensor, type Tensor } from '@sparse/tensor';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPEFTAdapter, savePEFTAdapter } from './node.js';
import { PEFT_NATIVE_TYPES, peftTypeOf } from './peft-variants.js';
import { fromPEFTFiles, PEFTFormatError, toPEFTFiles } from './peft.js';
import { getVariant, listVariants, registerVariant, type AdapterState } from './variants/index.js';

type Indexed = AdapterState & { indices?: Record<string, Int32Array> };

function randn(rng: Random, shape: number[]): Float32Tensor {
  return tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
}
/** A random base with about a quarter of its entries pruned (so merges go through a real mask). */
function base(rng: Random, shape: [number, number]): Float32Tensor {
  const w = randn(rng, shape);
  for (let k = 0; k < w.data.length; k++) if (rng.uniform() < 0.25) w.data[k] = 0;
  return w;
}

// Two modules of one folder; every variant's constraints hold for both (heads 2 and blockSize 4 divide them).
const MODULES: Record<string, [number, number]> = { 'model.layers.0.mlp.up_proj': [8, 12], 'model.layers.0.self_attn.o_proj': [4, 12] };

/**
 * Configs for the variants whose defaults do not fit these small modules or skip a branch worth
 * writing (data-aware ones get their calibration data per module); every other registered variant,
 * a new one included, runs with its defaults.
 */
const CASES: Record<string, (rng: Random, shape: [number, number]) => Record<string, unknown>> = {
  lora: () => ({ r: 2, alpha: 4 }),
  sqft: () => ({ r: 2 }),
  spp: () => ({ colInit: 0.5 }),
  'asymmetric-lora': () => ({ r: 2, aInit: 'orthogonal' }),
  clover: () => ({ heads: 2 }),
  corda: (rng) => ({ r: 2, mode: 'knowledge-preserved', inputs: randn(rng, [6, 12]) }),
  dsee: () => ({ r: 2, density: 0.2, decompositionRank: 3 }),
  'dynamic-rank': () => ({ r: 3, rslora: true }),
  'lora-dropout': () => ({ r: 2, p: 0.2, seed: 7 }),
  'lora-sb': (rng, shape) => ({ r: 2, gradient: randn(rng, shape), stepSize: 0.5 }),
  'lora-xs': () => ({ r: 2 }),
  mosa: () => ({ r: 2, modules: 3 }),
  lors: () => ({ r: 2, alpha: 3 }),
  losia: () => ({ rows: 0.5, cols: 0.25 }),
  'null-lora': (rng) => ({ r: 2, space: 'inputs', inputs: randn(rng, [5, 12]) }),
  pst: () => ({ r: 2, scoreRank: 2, sparsity: 0.6, scheduleEnd: 0.8 }),
  rosa: () => ({ r: 2, density: 0.2 }),
  roselora: () => ({ r: 2, densityA: 0.5, densityB: 0.5 }),
  s2ft: () => ({ axis: 'column', groupSize: 2, groups: 2 }),
  sara: () => ({ density: 0.2 }),
  'selective-lora': () => ({ r: 4, blocks: 2 }),
  smt: () => ({ blockSize: 4, blocks: 2 }),
  snell: () => ({ dim: 2, sparsity: 0.5 }),
  'sparse-adapter': () => ({ r: 2, sparsity: 0.5 }),
  'spectral-adapter': () => ({ r: 2 }),
  ssf: () => ({}),
  svfit: () => ({ r: 2 }),
};

/** Inits every module, then sets all float params to random values so ΔW is not zero. */
function adapters(name: string, seed: number): { states: Record<string, Indexed>; bases: Record<string, Float32Tensor> } {
  const rng = new Random(seed);
  const states: Record<string, Indexed> = {};
  const bases: Record<string, Float32Tensor> = {};
  for (const [m, shape] of Object.entries(MODULES)) {
    bases[m] = base(rng, shape);
    const s = getVariant(name).init(bases[m], (CASES[name] ?? (() => ({})))(rng, shape), rng) as Indexed;
    // Gates stay positive (on), or selective-lora's ΔW could be switched off entirely; PST's level stays in [0, 1).
    for (const [n, p] of Object.entries(s.params)) for (let k = 0; k < p.data.length; k++) p.data[k] = n.endsWith('_gate') ? 1 + rng.uniform() : n === 'pst_sparsity' ? 0.6 * rng.uniform() : rng.normal(0, 0.5);
    states[m] = s;
  }
  return { states, bases };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lora-variants-peft-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('its configs are for registered variants', () => {
  for (const name of Object.keys(CASES)) expect(listVariants(), name).toContain(name);
});

describe.each(listVariants())('%s in the PEFT layout', (name) => {
  it('writes its own peft_type, snake_case config keys, F32 params and I32 indices, and loads back exactly', async () => {
    const { states, bases } = adapters(name, 11);
    const files = toPEFTFiles(states, { baseModelNameOrPath: 'org/model', taskType: 'CAUSAL_LM' });
    const cfg = files.config;
    expect(cfg).toMatchObject({ base_model_name_or_path: 'org/model', task_type: 'CAUSAL_LM', target_modules: ['o_proj', 'up_proj'], bias: 'none' });
    const first = Object.values(states)[0]!;
    if (name === 'lora' || name === 'sqft') expect(cfg.peft_type).toBe('LORA');
    else {
      expect(cfg.peft_type).toBe(peftTypeOf(name));
      expect(PEFT_NATIVE_TYPES).not.toContain(cfg.peft_type);
      expect(cfg.sparse_variant).toBe(name);
    }
    if (name !== 'lora' && name !== 'sqft' && name !== 'spp') {
      // Each config field under its snake_case key, nothing tensor-valued (calibration data stays out).
      for (const [k, v] of Object.entries(first.config as object)) expect(cfg[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]).toEqual(v);
      expect(cfg.module_shapes).toEqual(MODULES);
      expect(cfg.adapter_params).toEqual(Object.keys(first.params).sort());
      expect(cfg.adapter_indices).toEqual(first.indices === undefined ? null : Object.keys(first.indices).sort());
      for (const [m, s] of Object.entries(states)) {
        for (const [p, t] of Object.entries(s.params)) expect(files.tensors[`base_model.model.${m}.${p}.weight`]).toBe(t);
        for (const [k, a] of Object.entries(s.indices ?? {})) expect(files.tensors[`base_model.model.${m}.${k}.indices`]!.data).toBe(a);
      }
    }
    const json = JSON.stringify(cfg);
    for (const k of ['inputs', 'covariance', 'gradient', 'dtype']) expect(json).not.toContain(`"${k}":`);
    expect(json.length).toBeLessThan(1500);

    await savePEFTAdapter(dir, states, { baseModelNameOrPath: 'org/model', taskType: 'CAUSAL_LM' });
    const st = parseSafetensors(new Uint8Array(await readFile(join(dir, 'adapter_model.safetensors'))));
    for (const n of st.tensorNames) expect(st.entry(n).dtype).toBe(n.endsWith('.indices') ? 'I32' : 'F32');
    const back = await loadPEFTAdapter(dir);
    expect(back.variant).toBe(name);
    expect(back.config).toEqual(first.config);
    expect(back.baseModelNameOrPath).toBe('org/model');
    expect(Object.keys(back.modules).sort()).toEqual(Object.keys(states).sort());
    const v = getVariant(name);
    for (const [m, s] of Object.entries(states)) {
      const b = back.modules[m]! as Indexed;
      expect(b).toEqual(s);
      expect('indices' in b).toBe('indices' in s);
      // The loaded state drives the variant exactly like the saved one.
      expect(v.delta(b, bases[m]!).data).toEqual(v.delta(s, bases[m]!).data);
      const merged = v.merge(bases[m]!, b);
      expect(merged.data).toEqual(v.merge(bases[m]!, s).data);
      expect(merged.data.some((x, k) => x !== bases[m]!.data[k])).toBe(true); // a real ΔW went through
    }
  });
});

describe('tensor-valued config fields', () => {
  it('are left out of adapter_config.json even when a hand-made state still carries them', () => {
    const rng = new Random(3);
    const w = randn(rng, [8, 12]);
    const x = randn(rng, [6, 12]);
    const s = getVariant('corda').init(w, { r: 2, inputs: x }, rng);
    const withInputs = { ...s, config: { ...(s.config as object), inputs: x } };
    const files = toPEFTFiles({ a: withInputs, b: s });
    expect(files.config).not.toHaveProperty('inputs');
    const back = fromPEFTFiles(JSON.parse(JSON.stringify(files.config)), parseSafetensors(serializeSafetensors(files.tensors)));
    expect(back.config).toEqual(s.config);
  });
});

describe('saving refuses states it cannot write faithfully', () => {
  const rng = new Random(4);
  const w = randn(rng, [8, 12]);
  it('a config value JSON cannot hold, naming the field', () => {
    const s = getVariant('svfit').init(w, { r: 2 }, rng);
    expect(() => toPEFTFiles({ a: { ...s, config: { r: Number.NaN } } })).toThrow(/config\.r = NaN cannot be written/);
  });
  it('indices that are not Int32Array, naming module and selection', () => {
    const s = getVariant('rosa').init(w, { r: 2, density: 0.1 }, rng) as Indexed;
    expect(() => toPEFTFiles({ a: { ...s, indices: { support: [1, 2] as unknown as Int32Array } } as AdapterState })).toThrow(/a\.indices\.support must be an Int32Array/);
  });
  it('modules whose tensors differ', () => {
    const s = getVariant('svfit').init(w, { r: 2 }, rng);
    const { svfit_delta: _d, ...rest } = s.params;
    expect(() => toPEFTFiles({ a: s, b: { ...s, params: rest } })).toThrow(/module 'b' has params \[svfit_U, svfit_V\]/);
  });
  it('a variant whose peft_type would be one of PEFT\'s own', () => {
    const ssf = getVariant('ssf');
    const off = registerVariant({ ...ssf, name: 'vera' });
    try {
      const s = { ...ssf.init(w, {}, rng), variant: 'vera' };
      expect(() => toPEFTFiles({ a: s })).toThrow(ArgumentError);
      expect(() => toPEFTFiles({ a: s })).toThrow(/"VERA", one of Python PEFT's own types/);
    } finally {
      off();
    }
  });
});

describe('malformed non-LoRA folders throw PEFTFormatError naming the file and field', () => {
  const M = 'model.layers.0.mlp.up_proj';
  const T = (p: string, kind = 'weight') => `base_model.model.${M}.${p}.${kind}`;
  function rosaFiles() {
    const rng = new Random(9);
    const s = getVariant('rosa').init(randn(rng, [8, 12]), { r: 2, density: 0.2 }, rng);
    return toPEFTFiles({ [M]: s });
  }
  type Edit = (cfg: Record<string, unknown>, t: Record<string, Tensor>) => void;
  const cases: [string, Edit, 'config' | 'weights', string, RegExp][] = [
    ['unknown sparse_variant', (c) => { c.sparse_variant = 'rossa'; }, 'config', 'sparse_variant', /unknown variant "rossa"; did you mean 'rosa'/],
    ['peft_type not matching sparse_variant', (c) => { c.peft_type = 'DSEE'; }, 'config', 'peft_type', /"DSEE" does not match sparse_variant "rosa"/],
    ['no sparse_variant', (c) => { delete c.sparse_variant; }, 'config', 'peft_type', /unsupported "ROSA"/],
    ['lora named as a sparse_variant', (c) => { c.sparse_variant = 'lora'; c.peft_type = 'LORA_X'; }, 'config', 'sparse_variant', /peft_type "LORA"/],
    ['SPP with another sparse_variant', (c) => { c.peft_type = 'SPP'; }, 'config', 'sparse_variant', /written by spp, not "rosa"/],
    ['an invalid config value', (c) => { c.density = 2; }, 'config', 'density', /invalid rosa config/],
    ['an unknown config key', (c) => { c.rank = 4; }, 'config', 'rank', /not a config field of rosa/],
    ['a camelCase config key', (c) => { c.densityA = 0.5; }, 'config', 'densityA', /not a snake_case config key/],
    ['no module_shapes', (c) => { delete c.module_shapes; }, 'config', 'module_shapes', /expected \{/],
    ['a bad module shape', (c) => { c.module_shapes = { [M]: [8, 0] }; }, 'config', `module_shapes.${M}`, /positive integers/],
    ['a bad adapter_params', (c) => { c.adapter_params = 'lora_A'; }, 'config', 'adapter_params', /non-empty list/],
    ['a missing param tensor', (_c, t) => { delete t[T('lora_B')]; }, 'weights', T('lora_B'), /missing/],
    ['a missing indices tensor', (_c, t) => { delete t[T('support', 'indices')]; }, 'weights', T('support', 'indices'), /missing/],
    ['float indices', (_c, t) => { t[T('support', 'indices')] = tensor(Float32Array.from(t[T('support', 'indices')]!.data as Int32Array), [t[T('support', 'indices')]!.shape[0]!]); }, 'weights', T('support', 'indices'), /expected I32, got float32/],
    ['an integer param', (_c, t) => { t[T('lora_A')] = tensor(new Int32Array(24), [2, 12]); }, 'weights', T('lora_A'), /expected F32, got int32/],
    ['a negative index', (_c, t) => { const a = Int32Array.from(t[T('support', 'indices')]!.data as Int32Array); a[1] = -3; t[T('support', 'indices')] = tensor(a, [a.length]); }, 'weights', T('support', 'indices'), /entry 1 is -3/],
    ['a tensor the variant does not keep', (_c, t) => { t[T('rosa_extra')] = tensor(new Float32Array(2), [2]); }, 'weights', T('rosa_extra'), /keeps no param 'rosa_extra'/],
    ['a module not in module_shapes', (_c, t) => { t['base_model.model.lm_head.lora_A.weight'] = tensor(new Float32Array(2), [2]); }, 'weights', 'base_model.model.lm_head.lora_A.weight', /module 'lm_head' is not in module_shapes/],
    ['a foreign tensor name', (_c, t) => { t['base_model.model.lm_head.bias'] = tensor(new Float32Array(2), [2]); }, 'weights', 'base_model.model.lm_head.bias', /not an adapter tensor name/],
  ];
  it.each(cases)('%s', async (_label, edit, file, fieldName, message) => {
    const files = rosaFiles();
    const cfg = JSON.parse(JSON.stringify(files.config)) as Record<string, unknown>;
    const tensors = { ...files.tensors };
    edit(cfg, tensors);
    await writeFile(join(dir, 'adapter_config.json'), JSON.stringify(cfg));
    await writeFile(join(dir, 'adapter_model.safetensors'), serializeSafetensors(tensors, files.metadata));
    const error = await loadPEFTAdapter(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PEFTFormatError);
    expect((error as PEFTFormatError).file).toBe(join(dir, file === 'config' ? 'adapter_config.json' : 'adapter_model.safetensors'));
    expect((error as PEFTFormatError).field).toBe(fieldName);
    expect((error as Error).message).toMatch(message);
  });

  it('an unedited folder loads (the cases above fail only by their edit)', async () => {
    const files = rosaFiles();
    expect(fromPEFTFiles(JSON.parse(JSON.stringify(files.config)), parseSafetensors(serializeSafetensors(files.tensors))).variant).toBe('rosa');
  });
});
