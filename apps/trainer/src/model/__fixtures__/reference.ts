// Test-only: plain-JS float64 forward passes of the GPT and Llama models, written directly from
// the definitions (per token, per head, loops), independent of the tfjs code under test.

import type { GPTConfig } from '../config.js';
import type { MoEConfig } from '../layers.js';
import type { LlamaConfig } from '../llama.js';

type Rows = number[][];
type Values = ReadonlyMap<string, Float32Array>;

function get(v: Values, name: string): Float32Array {
  const a = v.get(name);
  if (!a) throw new Error(`reference: no value for ${name}`);
  return a;
}

/** y = W x + b for W stored [out, in] row-major. */
function linRow(x: number[], w: Float32Array, out: number, b?: Float32Array): number[] {
  const n = x.length;
  const y: number[] = [];
  for (let o = 0; o < out; o++) {
    let s = b ? b[o] : 0;
    for (let i = 0; i < n; i++) s += w[o * n + i] * x[i];
    y.push(s);
  }
  return y;
}

function lin(x: Rows, v: Values, name: string, out: number, bias = false): Rows {
  const w = get(v, `${name}.weight`);
  const b = bias ? get(v, `${name}.bias`) : undefined;
  return x.map((r) => linRow(r, w, out, b));
}

function layerNormRow(x: number[], g: Float32Array, b: Float32Array, eps = 1e-5): number[] {
  const m = x.reduce((s, a) => s + a, 0) / x.length;
  const va = x.reduce((s, a) => s + (a - m) ** 2, 0) / x.length;
  return x.map((a, i) => ((a - m) / Math.sqrt(va + eps)) * g[i] + b[i]);
}

function rmsNormRow(x: number[], g: Float32Array, eps: number): number[] {
  const ms = x.reduce((s, a) => s + a * a, 0) / x.length;
  return x.map((a, i) => (a / Math.sqrt(ms + eps)) * g[i]);
}

const geluTanh = (a: number) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3)));
const silu = (a: number) => a / (1 + Math.exp(-a));

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((a) => Math.exp(a - m));
  const s = e.reduce((p, a) => p + a, 0);
  return e.map((a) => a / s);
}

/** Causal attention; query head h reads key/value head floor(h / (heads/kvHeads)). Rows are b*T + t. */
function attend(q: Rows, k: Rows, v: Rows, b: number, t: number, heads: number, kvHeads: number, hd: number): Rows {
  const out: Rows = q.map(() => new Array(heads * hd).fill(0));
  const g = heads / kvHeads;
  for (let bi = 0; bi < b; bi++) {
    for (let h = 0; h < heads; h++) {
      const kv = Math.floor(h / g);
      for (let i = 0; i < t; i++) {
        const qi = q[bi * t + i].slice(h * hd, (h + 1) * hd);
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          const kj = k[bi * t + j].slice(kv * hd, (kv + 1) * hd);
          scores.push(qi.reduce((s, a, c) => s + a * kj[c], 0) / Math.sqrt(hd));
        }
        const p = softmax(scores);
        for (let j = 0; j <= i; j++) for (let c = 0; c < hd; c++) out[bi * t + i][h * hd + c] += p[j] * v[bi * t + j][kv * hd + c];
      }
    }
  }
  return out;
}

/** HF Llama rotary embedding: for each head, pairs (i, i + hd/2) rotate by pos·theta^(-2i/hd). */
function rope(x: Rows, t: number, heads: number, hd: number, theta: number): Rows {
  const half = hd / 2;
  return x.map((row, n) => {
    const pos = n % t;
    const y = row.slice();
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const ang = pos * Math.pow(theta, (-2 * i) / hd);
        const a = row[h * hd + i];
        const c = row[h * hd + i + half];
        y[h * hd + i] = a * Math.cos(ang) - c * Math.sin(ang);
        y[h * hd + i + half] = c * Math.cos(ang) + a * Math.sin(ang);
      }
    }
    return y;
  });
}

/** Per token: router logits, the top k (ties to the lower index), softmax over them, gated sum of those experts only. */
export function moeReference(x: Rows, v: Values, prefix: string, moe: MoEConfig, expert: (e: number, row: number[]) => number[]): { out: Rows; chosen: number[][]; gates: number[][] } {
  const router = get(v, `${prefix}router.weight`);
  const chosen: number[][] = [];
  const gates: number[][] = [];
  const out = x.map((row) => {
    const logits = linRow(row, router, moe.experts);
    const order = logits.map((_, e) => e).sort((a, b) => logits[b] - logits[a] || a - b).slice(0, moe.topK);
    const g = softmax(order.map((e) => logits[e]));
    chosen.push(order);
    gates.push(g);
    const y = new Array(row.length).fill(0);
    order.forEach((e, k) => expert(e, row).forEach((a, c) => (y[c] += g[k] * a)));
    return y;
  });
  return { out, chosen, gates };
}

function addRows(a: Rows, b: Rows): Rows {
  return a.map((r, i) => r.map((x, j) => x + b[i][j]));
}

/** GPT logits [B*T][V] (weights [out, in]). */
export function gptReference(cfg: GPTConfig, v: Values, ids: number[][]): Rows {
  const { d, heads, vocab } = cfg;
  const hidden = cfg.mlpRatio * d;
  const b = ids.length;
  const t = ids[0].length;
  const wte = get(v, 'wte.weight');
  const wpe = get(v, 'wpe.weight');
  let x: Rows = ids.flatMap((row) => row.map((id, pos) => Array.from({ length: d }, (_, c) => wte[id * d + c] + wpe[pos * d + c])));
  for (let l = 0; l < cfg.layers; l++) {
    const p = `h.${l}.`;
    const h = x.map((r) => layerNormRow(r, get(v, `${p}ln_1.weight`), get(v, `${p}ln_1.bias`)));
    const qkv = lin(h, v, `${p}attn.c_attn`, 3 * d, true);
    const a = attend(qkv.map((r) => r.slice(0, d)), qkv.map((r) => r.slice(d, 2 * d)), qkv.map((r) => r.slice(2 * d)), b, t, heads, heads, d / heads);
    x = addRows(x, lin(a, v, `${p}attn.c_proj`, d, true));
    const h2 = x.map((r) => layerNormRow(r, get(v, `${p}ln_2.weight`), get(v, `${p}ln_2.bias`)));
    const mlp = (pre: string, row: number[]) =>
      linRow(linRow(row, get(v, `${pre}c_fc.weight`), hidden, get(v, `${pre}c_fc.bias`)).map(geluTanh), get(v, `${pre}c_proj.weight`), d, get(v, `${pre}c_proj.bias`));
    const m = cfg.moe ? moeReference(h2, v, `${p}mlp.`, cfg.moe, (e, row) => mlp(`${p}mlp.experts.${e}.`, row)).out : h2.map((row) => mlp(`${p}mlp.`, row));
    x = addRows(x, m);
  }
  const f = x.map((r) => layerNormRow(r, get(v, 'ln_f.weight'), get(v, 'ln_f.bias')));
  return f.map((r) => linRow(r, wte, vocab));
}

/** Llama logits [B*T][V]. */
export function llamaReference(cfg: LlamaConfig, v: Values, ids: number[][]): Rows {
  const { d, heads, kvHeads, vocab, mlpHidden, normEps } = cfg;
  const hd = d / heads;
  const b = ids.length;
  const t = ids[0].length;
  const emb = get(v, 'model.embed_tokens.weight');
  let x: Rows = ids.flatMap((row) => row.map((id) => Array.from(emb.subarray(id * d, (id + 1) * d))));
  for (let l = 0; l < cfg.layers; l++) {
    const p = `model.layers.${l}.`;
    const h = x.map((r) => rmsNormRow(r, get(v, `${p}input_layernorm.weight`), normEps));
    const q = rope(lin(h, v, `${p}self_attn.q_proj`, heads * hd), t, heads, hd, cfg.ropeTheta);
    const k = rope(lin(h, v, `${p}self_attn.k_proj`, kvHeads * hd), t, kvHeads, hd, cfg.ropeTheta);
    const vv = lin(h, v, `${p}self_attn.v_proj`, kvHeads * hd);
    x = addRows(x, lin(attend(q, k, vv, b, t, heads, kvHeads, hd), v, `${p}self_attn.o_proj`, d));
    const h2 = x.map((r) => rmsNormRow(r, get(v, `${p}post_attention_layernorm.weight`), normEps));
    const mlp = (pre: string, row: number[]) => {
      const g = linRow(row, get(v, `${pre}gate_proj.weight`), mlpHidden).map(silu);
      const u = linRow(row, get(v, `${pre}up_proj.weight`), mlpHidden);
      return linRow(g.map((a, i) => a * u[i]), get(v, `${pre}down_proj.weight`), d);
    };
    const m = cfg.moe ? moeReference(h2, v, `${p}mlp.`, cfg.moe, (e, row) => mlp(`${p}mlp.experts.${e}.`, row)).out : h2.map((row) => mlp(`${p}mlp.`, row));
    x = addRows(x, m);
  }
  const f = x.map((r) => rmsNormRow(r, get(v, 'model.norm.weight'), normEps));
  return f.map((r) => linRow(r, get(v, cfg.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), vocab));
}
