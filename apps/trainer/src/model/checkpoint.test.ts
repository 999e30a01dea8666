import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { encodeBFloat16, encodeFloat16, Random, roundBFloat16, roundFloat16, tensor, type Tensor } from '@sparse/tensor';
import { openSafetensors, writeSafetensorsFile } from '@sparse/tensor/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { CheckpointError, readCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { createModel, defaultSpec, paramShapes } from './index.js';
import type { LanguageModel, ModelSpec } from './types.js';

let dir: string;
beforeAll(async () => {
  await chooseBackend();
  dir = mkdtempSync(join(tmpdir(), 'sparse-ckpt-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function freshDir(): string {
  const d = join(dir, `case${n++}`);
  rmSync(d, { recursive: true, force: true });
  return mkdtempSync(d);
}

const ids = [[1, 5, 2, 7, 3, 0], [4, 4, 9, 8, 6, 2]];

function logitsOf(m: LanguageModel): number[] {
  return tf.tidy(() => Array.from(m.logits2d(tf.tensor2d(ids, [2, 6], 'int32')).dataSync()));
}

type Dt = 'float32' | 'float16' | 'bfloat16';

/** Random values rounded to what `dt` stores exactly, so a round trip is lossless. */
function valuesFor(spec: ModelSpec, dt: Dt, seed: number): Map<string, Float32Array> {
  const rng = new Random(seed);
  const round = dt === 'float16' ? roundFloat16 : dt === 'bfloat16' ? roundBFloat16 : (x: number) => x;
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of paramShapes(spec)) {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
    rng.fillNormal(v, name.includes('norm') || name.includes('ln_') ? 1 : 0, 0.3);
    out.set(name, v.map(round));
  }
  return out;
}

function encode(data: Float32Array, shape: number[], dt: Dt): Tensor {
  if (dt === 'float16') return tensor(encodeFloat16(data), shape, { dtype: 'float16' });
  if (dt === 'bfloat16') return tensor(encodeBFloat16(data), shape, { dtype: 'bfloat16' });
  return tensor(data, shape);
}

/** Our [out, in] weight as GPT-2's Conv1D [in, out]. */
function toConv1D(v: Float32Array, shape: number[]): Float32Array {
  const [o, i] = shape;
  const t = new Float32Array(v.length);
  for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) t[c * o + r] = v[r * i + c];
  return t;
}

const CONV = /(c_attn|c_proj|c_fc)\.weight$/;

async function writeGPT2(d: string, spec: ModelSpec, values: Map<string, Float32Array>, dt: Dt, prefix: string, skip?: string): Promise<void> {
  const shapes = paramShapes(spec);
  const entries: Record<string, Tensor> = {};
  for (const [name, v] of values) {
    if (name === skip) continue;
    const shape = shapes.get(name)!;
    entries[prefix + name] = CONV.test(name) ? encode(toConv1D(v, shape), [shape[1], shape[0]], dt) : encode(v, shape, dt);
  }
  // GPT-2 files also carry the causal-mask buffers; they are not parameters
  entries[`${prefix}h.0.attn.bias`] = tensor(new Float32Array(4), [1, 1, 2, 2]);
  await writeSafetensorsFile(join(d, 'model.safetensors'), entries, { format: 'pt' });
  const s = spec as ModelSpec & { d: number; layers: number; heads: number; mlpRatio: number };
  writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: s.d, n_layer: s.layers, n_head: s.heads, n_positions: s.ctx, vocab_size: s.vocab, n_inner: s.mlpRatio * s.d, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5 }));
}

function llamaConfig(spec: ModelSpec): Record<string, unknown> {
  const s = spec as ModelSpec & Record<string, number | boolean>;
  return {
    model_type: 'llama', hidden_size: s.d, intermediate_size: s.mlpHidden, num_hidden_layers: s.layers, num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads, rms_norm_eps: s.normEps, rope_theta: s.ropeTheta, vocab_size: s.vocab, max_position_embeddings: s.ctx,
    tie_word_embeddings: s.tiedEmbeddings, hidden_act: 'silu',
  };
}

describe('our checkpoints', () => {
  for (const spec of [{ ...defaultSpec('gpt', 12), moe: { experts: 2, topK: 1 } }, { ...defaultSpec('llama', 12), tiedEmbeddings: false }] as ModelSpec[]) {
    it(`round-trips a ${spec.architecture} model: names, spec in __metadata__, identical logits`, async () => {
      const d = freshDir();
      const path = join(d, 'model.safetensors');
      const model = createModel(spec, { seed: 5 });
      await saveCheckpoint(model, path, { step: '7' });
      expect(readdirSync(d)).toEqual(['model.safetensors']); // the temporary file was renamed away
      const r = await openSafetensors(path);
      expect(JSON.parse(r.metadata.spec)).toEqual(model.spec);
      expect(r.metadata.step).toBe('7');
      expect([...r.tensorNames].sort()).toEqual(Object.keys(model.params).sort());
      await r.close();
      const back = await loadCheckpoint(path);
      expect(back.spec).toEqual(model.spec);
      expect(logitsOf(back)).toEqual(logitsOf(model));
      model.dispose();
      back.dispose();
    });
  }
});

describe('Hugging Face GPT-2 checkpoints', () => {
  const spec: ModelSpec = { architecture: 'gpt', vocab: 11, ctx: 8, d: 8, layers: 2, heads: 2, mlpRatio: 3 };
  for (const [dt, prefix] of [['float32', ''], ['float16', 'transformer.'], ['bfloat16', '']] as [Dt, string][]) {
    it(`imports ${dt} Conv1D weights${prefix ? ' with the transformer. prefix' : ''}: logits equal the model built from the same values`, async () => {
      const d = freshDir();
      const values = valuesFor(spec, dt, 40);
      await writeGPT2(d, spec, values, dt, prefix);
      const want = createModel(spec, { values });
      const got = await loadCheckpoint(d); // the directory
      expect(got.spec).toEqual(want.spec);
      expect(logitsOf(got)).toEqual(logitsOf(want));
      const viaFile = await readCheckpoint(join(d, 'model.safetensors'));
      expect(viaFile.source).toBe('hf-gpt2');
      expect(viaFile.values.get('h.1.mlp.c_fc.weight')).toEqual(values.get('h.1.mlp.c_fc.weight'));
      want.dispose();
      got.dispose();
    });
  }

  it('names the file and tensor when one is missing or misshapen', async () => {
    const d = freshDir();
    const values = valuesFor(spec, 'float32', 41);
    await writeGPT2(d, spec, values, 'float32', '', 'h.1.ln_2.bias');
    const err = await readCheckpoint(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).tensor).toBe('h.1.ln_2.bias');
    expect((err as Error).message).toContain(join(d, 'model.safetensors'));
    expect((err as Error).message).toMatch(/missing tensor h\.1\.ln_2\.bias/);
    // a c_fc weight left in [out, in] instead of Conv1D's [in, out]
    const bad = freshDir();
    await writeGPT2(bad, spec, values, 'float32', '');
    const shapes = paramShapes(spec);
    const entries: Record<string, Tensor> = {};
    for (const [name, v] of values) entries[name] = CONV.test(name) && name !== 'h.0.mlp.c_fc.weight' ? tensor(toConv1D(v, shapes.get(name)!), [shapes.get(name)![1], shapes.get(name)![0]]) : tensor(v, shapes.get(name)!);
    await writeSafetensorsFile(join(bad, 'model.safetensors'), entries);
    await expect(readCheckpoint(bad)).rejects.toThrow(/tensor h\.0\.mlp\.c_fc\.weight has shape \[24, 8\], expected \[8, 24\] \(Conv1D/);
  });
});

describe('Hugging Face Llama checkpoints', () => {
  const base = { ...defaultSpec('llama', 13), d: 16, heads: 4, kvHeads: 2, mlpHidden: 24, ctx: 16, normEps: 1e-6, ropeTheta: 5000 } as ModelSpec;
  for (const [dt, tied] of [['bfloat16', false], ['float16', true], ['float32', false]] as [Dt, boolean][]) {
    it(`imports ${dt}, ${tied ? 'tied' : 'untied'} embeddings, grouped-query attention: equal logits`, async () => {
      const d = freshDir();
      const spec = { ...base, tiedEmbeddings: tied };
      const values = valuesFor(spec, dt, 50);
      const entries: Record<string, Tensor> = {};
      const shapes = paramShapes(spec);
      for (const [name, v] of values) entries[name] = encode(v, shapes.get(name)!, dt);
      await writeSafetensorsFile(join(d, 'model.safetensors'), entries, { format: 'pt' });
      writeFileSync(join(d, 'config.json'), JSON.stringify(llamaConfig(spec)));
      const want = createModel(spec, { values });
      const got = await loadCheckpoint(join(d, 'model.safetensors'));
      expect(got.spec).toEqual(want.spec);
      expect(logitsOf(got)).toEqual(logitsOf(want));
      want.dispose();
      got.dispose();
    });
  }

  it('reads a sharded checkpoint through model.safetensors.index.json', async () => {
    const d = freshDir();
    const values = valuesFor(base, 'float32', 51);
    const shapes = paramShapes(base);
    const names = [...values.keys()];
    const map: Record<string, string> = {};
    for (const [k, part] of [names.slice(0, 7), names.slice(7)].entries()) {
      const file = `model-0000${k + 1}-of-00002.safetensors`;
      await writeSafetensorsFile(join(d, file), Object.fromEntries(part.map((nm) => [nm, tensor(values.get(nm)!, shapes.get(nm)!)])));
      for (const nm of part) map[nm] = file;
    }
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: map }));
    writeFileSync(join(d, 'config.json'), JSON.stringify(llamaConfig(base)));
    const r = await readCheckpoint(d);
    expect(r.source).toBe('hf-llama');
    expect(r.files.length).toBe(2);
    for (const [nm, v] of values) expect(r.values.get(nm)).toEqual(v);
  });

  it('rejects unknown architectures, missing configs and unsupported settings, naming the file', async () => {
    const d = freshDir();
    const values = valuesFor(base, 'float32', 52);
    const shapes = paramShapes(base);
    await writeSafetensorsFile(join(d, 'model.safetensors'), Object.fromEntries([...values].map(([nm, v]) => [nm, tensor(v, shapes.get(nm)!)])));
    await expect(readCheckpoint(d)).rejects.toThrow(/no config\.json beside it/);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...llamaConfig(base), model_type: 'bert' }));
    const err = await readCheckpoint(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/unknown architecture: model_type "bert"/);
    expect((err as CheckpointError).file).toBe(join(d, 'model.safetensors'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...llamaConfig(base), rope_scaling: { type: 'linear', factor: 2 } }));
    await expect(readCheckpoint(d)).rejects.toThrow(/config\.json: config rope_scaling is not supported/);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...llamaConfig(base), num_key_value_heads: 3 }));
    await expect(readCheckpoint(d)).rejects.toThrow(/config\.json: gives an invalid model: model spec: kvHeads/);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...llamaConfig(base), intermediate_size: 20 }));
    await expect(readCheckpoint(d)).rejects.toThrow(/model\.layers\.0\.mlp\.gate_proj\.weight has shape \[24, 16\], expected \[20, 16\]/);
    await expect(readCheckpoint(join(d, 'nope'))).rejects.toThrow(CheckpointError);
  });
});

describe('claimed sizes and shard paths', () => {
  it('a small checkpoint whose spec claims layers = 1e7 fails with a CheckpointError before sizing anything', async () => {
    const d = freshDir();
    const model = createModel({ ...defaultSpec('gpt', 12), d: 8, heads: 2, ctx: 8 } as ModelSpec, { seed: 3 });
    const path = join(d, 'model.safetensors');
    await saveCheckpoint(model, path);
    model.dispose();
    // Rewrite the spec in __metadata__ to claim ten million blocks; the tensors stay as they are.
    const r = await openSafetensors(path);
    const entries: Record<string, Tensor> = {};
    for (const name of r.names) entries[name] = (await r.read(name)) as Tensor;
    const metadata = { ...r.metadata, spec: JSON.stringify({ ...JSON.parse(r.metadata.spec!), layers: 1e7 }) };
    await r.close();
    await writeSafetensorsFile(path, entries, metadata);
    expect(readdirSync(d).length).toBe(1);
    const started = performance.now();
    const err = await readCheckpoint(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/the spec claims layers = 10000000, but the checkpoint holds only \d+ tensors/);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('a spec claiming more parameters than MAX_CHECKPOINT_PARAMETERS is a CheckpointError naming the claim', async () => {
    const d = freshDir();
    const model = createModel({ ...defaultSpec('gpt', 12), d: 8, heads: 2, ctx: 8 } as ModelSpec, { seed: 4 });
    const path = join(d, 'model.safetensors');
    await saveCheckpoint(model, path);
    model.dispose();
    const r = await openSafetensors(path);
    const entries: Record<string, Tensor> = {};
    for (const name of r.names) entries[name] = (await r.read(name)) as Tensor;
    const metadata = { ...r.metadata, spec: JSON.stringify({ ...JSON.parse(r.metadata.spec!), vocab: 2 ** 30 }) };
    await r.close();
    await writeSafetensorsFile(path, entries, metadata);
    await expect(readCheckpoint(path)).rejects.toThrow(/the spec claims too large a model: .*tensor wte\.weight of shape \[1073741824, 8\] claims 8589934592 elements/);
  });

  it("a shard index's weight_map may not name files outside the checkpoint folder", async () => {
    const d = freshDir();
    const inner = join(d, 'ckpt');
    rmSync(inner, { recursive: true, force: true });
    mkdtempSync(inner);
    const ckpt = readdirSync(d).map((f) => join(d, f))[0]!;
    writeFileSync(join(d, 'outside.safetensors'), 'not read');
    for (const [file, why] of [
      ['../outside.safetensors', /weight_map names "\.\.\/outside\.safetensors" for tensor wte\.weight, outside the checkpoint folder/],
      [join(d, 'outside.safetensors'), /outside the checkpoint folder/],
      ['shards/../../outside.safetensors', /outside the checkpoint folder/],
      ['', /expected a shard file name/],
    ] as const) {
      writeFileSync(join(ckpt, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: { 'wte.weight': file } }));
      const err = await readCheckpoint(ckpt).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CheckpointError);
      expect((err as Error).message).toMatch(why);
      expect((err as CheckpointError).tensor).toBe('wte.weight');
    }
    writeFileSync(join(ckpt, 'model.safetensors.index.json'), JSON.stringify({ weight_map: ['a'] }));
    await expect(readCheckpoint(ckpt)).rejects.toThrow(/weight_map must be an object/);
  });
});
