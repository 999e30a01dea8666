import * as tf from '@tensorflow/tfjs-core';
import { Random } from '@sparse/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBackend } from '../backend.js';
import { ModelSpecError } from './errors.js';
import { initParamValues } from './layers.js';
import { createLlama, Llama, llamaParamSpecs, type LlamaConfig } from './llama.js';
import { llamaReference, moeReference } from './__fixtures__/reference.js';

const gqa: LlamaConfig = { vocab: 13, ctx: 8, d: 16, layers: 2, heads: 4, kvHeads: 2, mlpHidden: 24, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: false };

/** Weights large enough that every path (and every rotary frequency) shapes the output. */
function boldValues(cfg: LlamaConfig, seed: number): Map<string, Float32Array> {
  const rng = new Random(seed);
  const values = initParamValues(llamaParamSpecs(cfg), rng);
  for (const [name, v] of values) {
    if (name.endsWith('norm.weight') || name.endsWith('layernorm.weight')) for (let i = 0; i < v.length; i++) v[i] = 1 + 0.2 * rng.normal();
    else rng.fillNormal(v, 0, 0.4);
  }
  return values;
}

function worstError(got: ArrayLike<number>, want: number[][]): number {
  const flat = want.flat();
  expect(got.length).toBe(flat.length);
  let worst = 0;
  for (let i = 0; i < flat.length; i++) worst = Math.max(worst, Math.abs(got[i] - flat[i]) / (1 + Math.abs(flat[i])));
  return worst;
}

const ids = [[1, 5, 2, 7, 3, 12, 0], [0, 10, 4, 4, 9, 8, 6]];

beforeAll(async () => {
  await chooseBackend();
});

describe('Llama', () => {
  for (const [label, cfg] of [
    ['grouped-query attention, untied output', gqa],
    ['one key/value head, tied embeddings', { ...gqa, kvHeads: 1, tiedEmbeddings: true, ropeTheta: 500 }],
    ['full multi-head attention', { ...gqa, kvHeads: 4, layers: 1 }],
    ['a mixture of experts', { ...gqa, moe: { experts: 4, topK: 2 } }],
  ] as [string, LlamaConfig][]) {
    it(`matches a float64 reference forward: ${label}`, () => {
      const values = boldValues(cfg, 31);
      const model = new Llama(cfg, values);
      const got = tf.tidy(() => model.logits2d(tf.tensor2d(ids, [2, 7], 'int32')).dataSync());
      expect(worstError(got, llamaReference(cfg, values, ids))).toBeLessThan(1e-4);
      model.dispose();
    });
  }

  it('uses rotary positions: the reference with (near) zero rotation disagrees', () => {
    const values = boldValues(gqa, 32);
    const model = new Llama(gqa, values);
    const got = tf.tidy(() => model.logits2d(tf.tensor2d(ids, [2, 7], 'int32')).dataSync());
    // a huge theta makes every rotation angle ~0: the model must then differ from itself with rope
    const flat = llamaReference({ ...gqa, ropeTheta: 1e30 }, values, ids);
    expect(worstError(got, flat)).toBeGreaterThan(1e-2);
    model.dispose();
  });

  it('has HF Llama names, [out, in] shapes and lists its linears by (block, group)', () => {
    const model = createLlama(gqa, { seed: 1 });
    for (const name of ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.1.mlp.down_proj.weight', 'model.layers.0.input_layernorm.weight', 'model.layers.0.post_attention_layernorm.weight', 'model.norm.weight', 'lm_head.weight']) {
      expect(model.params[name], name).toBeDefined();
    }
    expect(model.params['model.layers.0.self_attn.k_proj.weight'].shape).toEqual([8, 16]);
    const ls = model.linears();
    expect(ls.filter((l) => l.block === 0).map((l) => `${l.role}:${l.group}`)).toEqual(['attn.q:0', 'attn.k:0', 'attn.v:0', 'attn.out:1', 'mlp.gate:2', 'mlp.up:2', 'mlp.down:3']);
    for (const l of ls) expect(model.params[l.name].shape).toEqual([l.out, l.in]);
    expect(model.spec).toEqual({ architecture: 'llama', ...gqa });
    const tied = createLlama({ ...gqa, tiedEmbeddings: true });
    expect(tied.params['lm_head.weight']).toBeUndefined();
    expect(model.numParams() - tied.numParams()).toBe(gqa.vocab * gqa.d);
    model.dispose();
    tied.dispose();
  });

  it('honours the hooks: every parameter through weight, each linear input, each block output', () => {
    const cfg: LlamaConfig = { ...gqa, moe: { experts: 3, topK: 1 } };
    const values = boldValues(cfg, 33);
    const model = new Llama(cfg, values);
    const seen = new Set<string>();
    const rows = new Map<string, number>();
    const blocks: number[] = [];
    let routed: number[][] = [];
    let routerIn: number[][] = [];
    tf.tidy(() => {
      model.logits2d(tf.tensor2d(ids, [2, 7], 'int32'), {
        weight: (n, p) => (seen.add(n), p),
        linearInput: (info, x) => {
          rows.set(info.name, x.shape[0]);
          expect(x.shape[1]).toBe(info.in);
          if (info.name === 'model.layers.1.mlp.router.weight') routerIn = x.arraySync() as number[][];
        },
        blockOutput: (b, h) => {
          expect(h.shape).toEqual([14, cfg.d]);
          blocks.push(b);
        },
        routing: (b, e, g) => {
          if (b === 1) routed = e.arraySync() as number[][];
          expect(Array.from(g.dataSync()).every((x) => x === 1)).toBe(true); // top-1: the softmax of one logit
        },
      });
    });
    expect([...seen].sort()).toEqual(Object.keys(model.params).sort());
    expect([...rows.keys()].sort()).toEqual(model.linears().map((l) => l.name).sort());
    expect(blocks).toEqual([0, 1]);
    const ref = moeReference(routerIn, values, 'model.layers.1.mlp.', cfg.moe!, () => new Array(cfg.d).fill(0));
    expect(routed).toEqual(ref.chosen);
    for (let e = 0; e < 3; e++) expect(rows.get(`model.layers.1.mlp.experts.${e}.up_proj.weight`)).toBe(ref.chosen.filter((c) => c[0] === e).length);
    model.dispose();
  });

  it('trains: Adam lowers the loss on a small batch', () => {
    const cfg: LlamaConfig = { ...gqa, vocab: 11, ctx: 12 };
    const model = createLlama(cfg, { seed: 4 });
    const rng = new Random(5);
    const seq = Array.from({ length: 4 }, () => {
      const start = rng.int(0, 11);
      return Array.from({ length: 13 }, (_, i) => (start + 3 * i) % 11); // counting by 3 mod 11
    });
    const x = tf.tensor2d(seq.map((s) => s.slice(0, 12)), [4, 12], 'int32');
    const y = tf.tensor2d(seq.map((s) => s.slice(1)), [4, 12], 'int32');
    const opt = tf.train.adam(0.02);
    const first = tf.tidy(() => model.loss(x, y).dataSync()[0]);
    expect(Math.abs(first - Math.log(11))).toBeLessThan(0.2);
    for (let step = 0; step < 40; step++) tf.tidy(() => {
      opt.minimize(() => model.loss(x, y), false, model.variables());
    });
    const last = tf.tidy(() => model.loss(x, y).dataSync()[0]);
    expect(last).toBeLessThan(first * 0.3);
    opt.dispose();
    model.dispose();
  });

  it('rejects a bad config naming the field', () => {
    const bad = (patch: Partial<LlamaConfig> & Record<string, unknown>, field: string) => {
      try {
        llamaParamSpecs({ ...gqa, ...patch } as LlamaConfig);
      } catch (e) {
        expect(e).toBeInstanceOf(ModelSpecError);
        expect((e as ModelSpecError).field).toBe(field);
        expect((e as Error).message).toContain(field);
        return;
      }
      throw new Error(`no error for ${field}`);
    };
    bad({ kvHeads: 3 }, 'kvHeads');
    bad({ heads: 3 }, 'heads');
    bad({ d: 24, heads: 8 }, 'heads'); // head width 3 is odd
    bad({ normEps: 0 }, 'normEps');
    bad({ moe: { experts: 2, topK: 3 } }, 'moe.topK');
    bad({ hidden_size: 4 }, 'hidden_size');
    expect(() => tf.tidy(() => createLlama(gqa).logits2d(tf.zeros([1, 9], 'int32')))).toThrow(/exceeds the model context 8/);
  });
});
