import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { createGPT } from './gpt.js';
import { createModel, defaultSpec, ModelSpecError, paramShapes, resolveSpec } from './index.js';
import type { ModelSpec } from './types.js';

beforeAll(async () => {
  await chooseBackend();
});

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelSpecError);
    expect((e as Error).message).toContain((e as ModelSpecError).field);
    return (e as ModelSpecError).field;
  }
  throw new Error('no error');
}

describe('createModel', () => {
  it('builds each architecture from its default spec, which it keeps as its spec', () => {
    for (const arch of ['gpt', 'llama'] as const) {
      const spec = defaultSpec(arch, 20);
      const model = createModel(spec, { seed: 3 });
      expect(model.architecture).toBe(arch);
      expect(model.spec).toEqual(spec);
      expect(createModel(JSON.parse(JSON.stringify(model.spec)) as ModelSpec).spec).toEqual(spec);
      const shapes = paramShapes(spec);
      expect([...shapes.keys()].sort()).toEqual(Object.keys(model.params).sort());
      for (const [n, s] of shapes) expect(model.params[n].shape).toEqual(s);
      const logits = tf.tidy(() => model.logits2d(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32')));
      expect(logits.shape).toEqual([3, 20]);
      logits.dispose();
      model.dispose();
    }
  });

  it('fills missing fields from the defaults; a seed gives the same GPT as createGPT', () => {
    expect(resolveSpec({ architecture: 'llama', vocab: 9, ctx: 16, d: 64 })).toEqual({ ...defaultSpec('llama', 9), ctx: 16, d: 64 });
    const a = createModel({ architecture: 'gpt', vocab: 9, ctx: 8 }, { seed: 7 });
    const b = createGPT({ vocab: 9, ctx: 8 }, { seed: 7 });
    for (const [n, v] of Object.entries(a.params)) expect(Array.from(v.dataSync())).toEqual(Array.from(b.params[n].dataSync()));
    a.dispose();
    b.dispose();
  });

  it('rebuilds a model from its values exactly', () => {
    const spec: ModelSpec = { ...defaultSpec('llama', 12), moe: { experts: 2, topK: 1 } };
    const a = createModel(spec, { seed: 1 });
    const b = createModel(a.spec, { values: a.values() });
    const ids = tf.tensor2d([[3, 1, 4, 1, 5]], [1, 5], 'int32');
    const [la, lb] = tf.tidy(() => [a.logits2d(ids).dataSync(), b.logits2d(ids).dataSync()]);
    expect(Array.from(lb)).toEqual(Array.from(la));
    const missing = a.values();
    missing.delete('model.norm.weight');
    expect(() => createModel(a.spec, { values: missing })).toThrow(/no value for parameter model.norm.weight/);
    a.dispose();
    b.dispose();
  });

  it('rejects bad specs with a ModelSpecError naming the field', () => {
    expect(fieldOf(() => createModel({ architecture: 'rnn' as 'gpt', vocab: 5, ctx: 4 }))).toBe('architecture');
    expect(fieldOf(() => createModel({ architecture: 'gpt', vocab: 0, ctx: 4 }))).toBe('vocab');
    expect(fieldOf(() => createModel({ architecture: 'gpt', vocab: 5, ctx: 4, heads: 5 }))).toBe('heads');
    expect(fieldOf(() => createModel({ architecture: 'gpt', vocab: 5, ctx: 4, layers: 1.5 }))).toBe('layers');
    expect(fieldOf(() => createModel({ architecture: 'gpt', vocab: 5, ctx: 4, mlpRatio: -1 }))).toBe('mlpRatio');
    expect(fieldOf(() => createModel({ architecture: 'gpt', vocab: 5, ctx: 4, kvHeads: 2 }))).toBe('kvHeads');
    expect(fieldOf(() => createModel({ architecture: 'gpt', vocab: 5, ctx: 4, moe: { experts: 0, topK: 1 } }))).toBe('moe.experts');
    expect(fieldOf(() => createModel({ architecture: 'llama', vocab: 5, ctx: 4, kvHeads: 3 }))).toBe('kvHeads');
    expect(fieldOf(() => createModel({ architecture: 'llama', vocab: 5, ctx: 4, tiedEmbeddings: 'yes' }))).toBe('tiedEmbeddings');
  });
});
