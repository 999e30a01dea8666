// A small GPT (the trainer's default shape: d 64, 2 layers, 4 heads, context 64, batch 8) written
// with tfjs-core ops, for timing one Adam training step per backend. tfjs-core alone registers no
// gradients and its gradient module is ESM that Node cannot load as is, so it is bundled once with
// esbuild (a repository devDependency) into a temporary file, as the trainer's build does.
import { build } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export const GPT_CONFIG = { vocab: 256, d: 64, layers: 2, heads: 4, t: 64, batch: 8 };

/** Loads tfjs-core, tfjs-backend-cpu and tfjs-core's gradients; returns tf. */
export async function loadTfWithGradients() {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  const outfile = path.join(mkdtempSync(path.join(os.tmpdir(), 'sparse-bench-')), 'register_all_gradients.mjs');
  await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', outfile, logLevel: 'error' });
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  await import(outfile);
  if (!tf.getGradient('BatchMatMul')) throw new Error('tfjs gradients did not register');
  return tf;
}

/** mulberry32 */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded initial parameters as plain arrays (identical for every backend). */
export function initGPT(cfg = GPT_CONFIG, seed = 1) {
  const next = rng(seed);
  const normal = (shape, std) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) values[i] = std * Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12))) * Math.cos(2 * Math.PI * next());
    return { shape, values };
  };
  const fill = (shape, v) => ({ shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) });
  const { vocab, d, t, layers } = cfg;
  const p = { wte: normal([vocab, d], 0.02), wpe: normal([t, d], 0.02), lnfg: fill([d], 1), lnfb: fill([d], 0) };
  for (let l = 0; l < layers; l++) {
    Object.assign(p, {
      [`h${l}.ln1g`]: fill([d], 1),
      [`h${l}.ln1b`]: fill([d], 0),
      [`h${l}.wqkv`]: normal([d, 3 * d], 1 / Math.sqrt(d)),
      [`h${l}.bqkv`]: fill([3 * d], 0),
      [`h${l}.wo`]: normal([d, d], 1 / Math.sqrt(d) / Math.sqrt(2 * layers)),
      [`h${l}.bo`]: fill([d], 0),
      [`h${l}.ln2g`]: fill([d], 1),
      [`h${l}.ln2b`]: fill([d], 0),
      [`h${l}.w1`]: normal([d, 4 * d], 1 / Math.sqrt(d)),
      [`h${l}.b1`]: fill([4 * d], 0),
      [`h${l}.w2`]: normal([4 * d, d], 1 / Math.sqrt(4 * d) / Math.sqrt(2 * layers)),
      [`h${l}.b2`]: fill([d], 0),
    });
  }
  const tokens = Int32Array.from({ length: cfg.batch * t }, () => Math.floor(next() * vocab));
  const targets = Int32Array.from({ length: cfg.batch * t }, () => Math.floor(next() * vocab));
  return { params: p, tokens, targets };
}

function layerNorm(tf, x, g, b) {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
}

function gelu(tf, x) {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(x, tf.mul(x, x)))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** Mean cross-entropy of next-token prediction. */
export function gptLoss(tf, cfg, p, tokens, targets, causal) {
  const { d, heads, t, batch, vocab, layers } = cfg;
  const hd = d / heads;
  const rows = batch * t;
  let x = tf.add(tf.reshape(tf.gather(p.wte, tf.reshape(tokens, [-1])), [batch, t, d]), p.wpe);
  x = tf.reshape(x, [rows, d]);
  for (let l = 0; l < layers; l++) {
    const h = layerNorm(tf, x, p[`h${l}.ln1g`], p[`h${l}.ln1b`]);
    const qkv = tf.reshape(tf.fused.matMul({ a: h, b: p[`h${l}.wqkv`], bias: p[`h${l}.bqkv`] }), [batch, t, 3, heads, hd]);
    const [q, k, v] = tf.split(qkv, 3, 2).map((z) => tf.transpose(tf.reshape(z, [batch, t, heads, hd]), [0, 2, 1, 3]));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)), causal);
    const att = tf.matMul(tf.softmax(scores), v);
    const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [rows, d]);
    x = tf.add(x, tf.fused.matMul({ a: merged, b: p[`h${l}.wo`], bias: p[`h${l}.bo`] }));
    const h2 = layerNorm(tf, x, p[`h${l}.ln2g`], p[`h${l}.ln2b`]);
    const up = gelu(tf, tf.fused.matMul({ a: h2, b: p[`h${l}.w1`], bias: p[`h${l}.b1`] }));
    x = tf.add(x, tf.fused.matMul({ a: up, b: p[`h${l}.w2`], bias: p[`h${l}.b2`] }));
  }
  const logits = tf.matMul(layerNorm(tf, x, p.lnfg, p.lnfb), p.wte, false, true);
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(targets, [-1]), vocab), logits);
}

/**
 * Sets `backend` and builds variables, data and an Adam optimizer on it; returns step() (one
 * training step, resolving to its loss) and dispose().
 */
export async function makeTrainer(tf, backend, init, cfg = GPT_CONFIG) {
  await tf.setBackend(backend);
  const vars = Object.fromEntries(Object.entries(init.params).map(([n, v]) => [n, tf.variable(tf.tensor(v.values, v.shape), true, `${backend}/${n}/${Math.random()}`)]));
  const tokens = tf.tensor2d(init.tokens, [cfg.batch, cfg.t], 'int32');
  const targets = tf.tensor2d(init.targets, [cfg.batch, cfg.t], 'int32');
  const causal = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([cfg.t, cfg.t]), -1, 0)), -1e9));
  const optimizer = tf.train.adam(1e-3);
  return {
    async step() {
      if (tf.getBackend() !== backend) await tf.setBackend(backend);
      const loss = optimizer.minimize(() => gptLoss(tf, cfg, vars, tokens, targets, causal), true, Object.values(vars));
      const value = (await loss.data())[0];
      loss.dispose();
      return value;
    },
    dispose() {
      tf.dispose([...Object.values(vars), tokens, targets, causal]);
      optimizer.dispose();
    },
  };
}
