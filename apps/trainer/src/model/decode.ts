// Incremental decoding with a KV cache, on plain Float32Arrays (no tfjs): a model runs one token (or
// one chunk of a prompt) at a time, each block's keys and values of the past positions kept, so a
// new token costs one pass over the weights instead of a full recompute. Every linear product goes
// through the kernel registry's gemvSparseInput with the weight stored [in, out] (transposed once
// here), which skips the weight rows of zero inputs: the activation-sparse fast path, and with the
// native kernels of @sparse/kernels-cpu (when registered) the fast dense gemv too. The activation
// hook is where @sparse/activation's sparsifiers plug in, at the same sites and in the same order
// as the tfjs forward (ForwardHooks.activation, sites.ts).

import type { Site } from '@sparse/activation';
import { BitmapKVCache } from '@sparse/attention';
import { ArgumentError, getKernel, type ActivationF32Kind, type AttentionBitmapKVArgs, type GemmArgs, type GemvSparseInputArgs, type GemvSparseInputKernel } from '@sparse/tensor';
import { layoutAllows, specLayout, type AttentionLayout } from './attention-op.js';
import { checkValues } from './base.js';
import type { GPTConfig } from './config.js';
import { gptLinears, gptParamSpecs } from './gpt.js';
import { resolveSpec } from './index.js';
import type { MoEConfig } from './layers.js';
import { llamaLinears, llamaParamSpecs, type LlamaConfig } from './llama.js';
import { linearSite, mlpActSite } from './sites.js';
import type { LanguageModel, LinearInfo, ModelSpec } from './types.js';

/**
 * Called at every activation site as the decoder reaches it. `x` [tokens, features] (row-major) is
 * a scratch copy the hook may change in place (zero entries). At a linear layer's input it may
 * return an array [tokens, out] that is added to the layer's product (R-Sparse's correction); at an
 * MLP activation it must return undefined.
 */
export type DecoderActivationHook = (site: Site, x: Float32Array, tokens: number) => Float32Array | undefined;

/**
 * KV-cache pruning at decode (Mustafar): each new position's key and value vectors are magnitude-pruned
 * per kv head (the largest-|x| entries of each headDim row survive) and appended to a BitmapKVCache per
 * block instead of the dense cache; attention reads that cache through the kernel registry's
 * attentionBitmapKV. `sparsity` sets both K and V (default 0.5, as the mustafar method); kSparsity /
 * vSparsity set one side. Every value is in [0, 1).
 */
export interface DecoderKVOptions {
  sparsity?: number;
  kSparsity?: number;
  vSparsity?: number;
  /** The kernel registry backend of attentionBitmapKV (default: the highest-priority one, looked up at each pass). */
  backend?: string;
}

/** The decoder's KV cache in bytes: as stored, and as the dense float32 cache of the same positions. */
export interface DecoderKVStats {
  /** Positions cached (per block). */
  positions: number;
  bytes: number;
  denseBytes: number;
  /** The fraction of K and V entries pruned (0 for the dense cache). */
  sparsity: number;
}

export interface DecoderOptions {
  /** Prune the KV cache (see DecoderKVOptions); absent: the dense cache. */
  kv?: DecoderKVOptions;
  /** The activation-sparsity hook (see DecoderActivationHook). */
  activation?: DecoderActivationHook;
  /** Count the zero inputs of every linear layer (what `stats()` reports). Default false. */
  stats?: boolean;
  /** Most prompt tokens one prefill pass computes at once (longer prompts go in chunks). Default 64. */
  prefillChunk?: number;
  /** Use this kernel registry backend's gemvSparseInput (default: the highest-priority one, looked up at each call). */
  backend?: string;
  /**
   * fromValues only: delete each linear weight from `values` once it is transposed, so the model is
   * never held twice (the map is the caller's; it is left without those entries).
   */
  release?: boolean;
}

/** What the decoder measured at one linear layer's input since the last resetStats(). */
export interface LinearInputStats {
  /** The site (the linear layer's weight name). */
  site: string;
  role: string;
  block: number;
  /** Input entries multiplied (tokens x in) and how many of them were zero. */
  entries: number;
  zeros: number;
  /** 1 - zeros / entries (1 when nothing was counted). */
  density: number;
}

/** A step or prompt would go past the model's context; `limit` is spec.ctx. */
export class ContextOverflowError extends ArgumentError {
  readonly limit: number;
  readonly position: number;
  readonly tokens: number;
  constructor(limit: number, position: number, tokens: number) {
    super(`decoder: ${tokens} more token${tokens === 1 ? '' : 's'} at position ${position} would exceed the model context of ${limit} tokens (ctx ${limit}); reset() to start over`);
    this.name = 'ContextOverflowError';
    this.limit = limit;
    this.position = position;
    this.tokens = tokens;
  }
}

interface Linear {
  info: LinearInfo;
  site: Site;
  /** The weight, [in, out] row-major. */
  w: Float32Array;
  bias?: Float32Array;
  in: number;
  out: number;
  zeros: number;
  entries: number;
}

interface Mlp {
  /** gpt: c_fc; llama: up_proj. */
  up: Linear;
  /** llama only. */
  gate?: Linear;
  down: Linear;
  actSite: Site;
}

interface Block {
  norm1: Float32Array;
  norm1Bias?: Float32Array;
  norm2: Float32Array;
  norm2Bias?: Float32Array;
  /** The norms' rotations [d, d] of a model with `normRotation` (h R after each norm). */
  rot1?: Float32Array;
  rot2?: Float32Array;
  /** gpt: c_attn (q | k | v); llama: q, k, v. */
  qkv?: Linear;
  q?: Linear;
  k?: Linear;
  v?: Linear;
  o: Linear;
  mlp?: Mlp;
  router?: Linear;
  experts?: Mlp[];
  /** [ctx, kvHeads * hd]: keys (rotated, for llama) and values of every past position (empty with `kv`). */
  kCache: Float32Array;
  vCache: Float32Array;
  /** With `kv`: the pruned cache of the past positions. */
  bitmap?: BitmapKVCache;
}

/** Bitmap cache rows gathered from non-adjacent positions (the layout of BitmapKV). */
interface KVGather {
  kBits: Uint8Array;
  vBits: Uint8Array;
  kValues: Float32Array;
  vValues: Float32Array;
  kStart: Int32Array;
  vStart: Int32Array;
}

/** Checks a DecoderKVOptions; returns the K and V sparsities. */
function kvSparsities(kv: DecoderKVOptions): { kSparsity: number; vSparsity: number } {
  if (kv === null || typeof kv !== 'object') throw new ArgumentError(`decoder: kv must be an object { sparsity } (or { kSparsity, vSparsity }), got ${JSON.stringify(kv)}`);
  const check = (name: string, v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ArgumentError(`decoder: kv.${name} must be a number in [0, 1), got ${JSON.stringify(v)}`);
    return v;
  };
  const all = check('sparsity', kv.sparsity) ?? 0.5;
  return { kSparsity: check('kSparsity', kv.kSparsity) ?? all, vSparsity: check('vSparsity', kv.vSparsity) ?? all };
}

type Nonlinearity = 'gelu' | 'silu' | 'relu' | 'relu2';

// the registry's names (GELU in its tanh form, as ops.ts and the fused ops compute it)
const KERNEL_KIND: Record<Nonlinearity, ActivationF32Kind> = { gelu: 'gelu-tanh', silu: 'silu', relu: 'relu', relu2: 'relu2' };

/** a[0:len] = f(a[0:len]) in place, through the kernel registry's activationF32 (native when registered). */
function applyNonlinearity(kind: Nonlinearity, a: Float32Array, len: number): void {
  getKernel('activationF32')({ kind: KERNEL_KIND[kind], n: len, x: a, xOffset: 0, y: a, yOffset: 0 });
}

/**
 * A multi-token pass uses the sparse-input kernel when at least this fraction of a layer's input channels is
 * zero for every token of the chunk (it then reads only the other channels' weight rows, but gathers them
 * first); below it the dense gemm is faster. Single-token steps always use the sparse-input kernel.
 */
const SKIP_WORTH_IT = 0.25;

/** [in, out] copy of a weight stored [out, in]. */
function transposed(w: Float32Array, out: number, inp: number): Float32Array {
  const t = new Float32Array(out * inp);
  for (let o = 0; o < out; o++) {
    const row = o * inp;
    for (let i = 0; i < inp; i++) t[i * out + o] = w[row + i]!;
  }
  return t;
}

/**
 * A model run token by token with a KV cache. Build it with Decoder.fromValues(spec, values) or
 * Decoder.fromModel(model); `step(token)` and `prefill(tokens)` return next-token logits [vocab].
 * The returned array is the decoder's own buffer, overwritten by the next call: copy it to keep it.
 */
export class Decoder {
  readonly spec: Readonly<ModelSpec>;
  readonly architecture: 'gpt' | 'llama';
  /** The context (spec.ctx): the most positions the cache holds. */
  readonly capacity: number;
  readonly vocab: number;
  /** Every site the hook can see, by name (precomputed; the hook receives these objects). */
  readonly sites: ReadonlyMap<string, Site>;

  #position = 0;
  readonly #blocks: Block[];
  readonly #d: number;
  readonly #heads: number;
  readonly #kvHeads: number;
  readonly #hd: number;
  readonly #act: Nonlinearity;
  readonly #moe?: MoEConfig;
  readonly #normEps: number;
  /** gpt: wte; llama: embed_tokens ([vocab, d]). */
  readonly #embed: Float32Array;
  /** gpt: wpe [ctx, d]. */
  readonly #pos?: Float32Array;
  readonly #normF: Float32Array;
  readonly #normFBias?: Float32Array;
  /** The output layer: [vocab, d] (tied, transW false) or lm_head transposed to [d, vocab]. */
  readonly #head: Float32Array;
  readonly #headTransposed: boolean;
  /** llama: theta^(-2i/hd), i < hd/2. */
  readonly #invFreq?: Float64Array;
  readonly #hook?: DecoderActivationHook;
  readonly #collect: boolean;
  readonly #backend?: string;
  readonly #chunk: number;
  readonly #linears: Linear[] = [];
  /** The spec's attention pattern over the whole context (a query at position i sees the keys it allows). */
  readonly #pattern?: AttentionLayout;
  /** Per query position being computed: 1 where its key is kept. */
  readonly #keep: Uint8Array;
  /** The dense cache seen as attentionBitmapKV's layout: every bit set, row r's values at r * headDim (made on first use). */
  #denseView: { bits: Uint8Array; start: Int32Array } | undefined;
  /** With `kv`: the K and V sparsities of the bitmap caches, and the attentionBitmapKV backend. */
  readonly #kv?: { kSparsity: number; vSparsity: number; backend?: string };
  /** The attentionBitmapKV arguments (fields set per call). */
  #kvArgs?: AttentionBitmapKVArgs;
  /** With `kv` and a pattern whose kept keys are not one run: the kept rows gathered for the kernel. */
  #gather?: KVGather;

  // scratch, sized for #chunk tokens
  readonly #x: Float32Array;
  readonly #h: Float32Array;
  readonly #proj: Float32Array;
  readonly #qb: Float32Array;
  readonly #kb: Float32Array;
  readonly #vb: Float32Array;
  readonly #att: Float32Array;
  readonly #tmp: Float32Array;
  readonly #ha: Float32Array;
  readonly #hb: Float32Array;
  readonly #xe: Float32Array;
  readonly #ye: Float32Array;
  readonly #routerLogits: Float32Array;
  readonly #chosen: Int32Array;
  readonly #gates: Float32Array;
  readonly #used: Uint8Array;
  readonly #rows: Int32Array;
  readonly #rowGate: Float32Array;
  readonly #hookBuf: Float32Array;
  readonly #xT: Float32Array;
  readonly #yT: Float32Array;
  readonly #scores: Float32Array;
  readonly #ropeCos: Float32Array;
  readonly #ropeSin: Float32Array;
  readonly #last: Float32Array;
  readonly #logits: Float32Array;
  /** Views of scratch buffers by length (what the hook sees). */
  readonly #views = new Map<Float32Array, Map<number, Float32Array>>();
  readonly #args: GemvSparseInputArgs;
  #kernel: GemvSparseInputKernel | undefined;
  /** Scratch of #skippable: which input channels some token of the chunk uses. */
  #liveChannels: Uint8Array;
  /** The dense gemm's arguments for multi-token passes (fields set per call). */
  readonly #gemmArgs: GemmArgs = { transA: false, transB: false, m: 0, n: 0, k: 0, alpha: 1, a: new Float32Array(0), aOffset: 0, lda: 1, b: new Float32Array(0), bOffset: 0, ldb: 1, beta: 0, c: new Float32Array(0), cOffset: 0, ldc: 1 };

  private constructor(spec: ModelSpec, values: Map<string, Float32Array> | ReadonlyMap<string, Float32Array>, options: DecoderOptions, copy: boolean) {
    const full = resolveSpec(spec);
    this.spec = Object.freeze({ ...full });
    this.architecture = full.architecture;
    this.capacity = full.ctx;
    this.vocab = full.vocab;
    const { architecture: _arch, ...rest } = full;
    const gpt = full.architecture === 'gpt' ? (rest as unknown as GPTConfig) : undefined;
    const llama = full.architecture === 'llama' ? (rest as unknown as LlamaConfig) : undefined;
    const specs = gpt ? gptParamSpecs(gpt) : llamaParamSpecs(llama!);
    checkValues(`decoder (${full.architecture})`, specs, values);
    const infos = gpt ? gptLinears(gpt) : llamaLinears(llama!);
    const d = (rest as unknown as { d: number }).d;
    const heads = (rest as unknown as { heads: number }).heads;
    this.#d = d;
    this.#heads = heads;
    this.#kvHeads = llama ? llama.kvHeads : heads;
    this.#hd = d / heads;
    this.#act = gpt ? (gpt.activation ?? 'gelu') : (llama!.activation ?? 'silu');
    const moe = (gpt ?? llama!).moe;
    if (moe) this.#moe = { experts: moe.experts, topK: moe.topK };
    this.#normEps = llama ? llama.normEps : 1e-5;
    this.#hook = options.activation;
    this.#collect = options.stats === true;
    if (options.backend !== undefined) this.#backend = options.backend;
    if (options.kv !== undefined) this.#kv = { ...kvSparsities(options.kv), ...(options.kv.backend !== undefined ? { backend: options.kv.backend } : {}) };
    const chunk = options.prefillChunk ?? 64;
    if (!Number.isInteger(chunk) || chunk < 1) throw new ArgumentError(`decoder: prefillChunk must be a positive integer, got ${JSON.stringify(options.prefillChunk)}`);
    this.#chunk = Math.min(chunk, this.capacity);

    const vec = (name: string): Float32Array => {
      const v = values.get(name)!;
      return copy ? Float32Array.from(v) : v;
    };
    const sites = new Map<string, Site>();
    const byName = new Map(infos.map((l) => [l.name, l]));
    const lin = (module: string): Linear => {
      const info = byName.get(`${module}.weight`);
      if (info === undefined) throw new ArgumentError(`decoder: ${module} is not a linear layer of this model`);
      const w = transposed(values.get(info.name)!, info.out, info.in);
      if (options.release && !copy) (values as Map<string, Float32Array>).delete(info.name);
      const site = linearSite(info);
      sites.set(site.name, site);
      const l: Linear = { info, site, w, in: info.in, out: info.out, zeros: 0, entries: 0, ...(info.bias ? { bias: vec(info.bias) } : {}) };
      this.#linears.push(l);
      return l;
    };
    const mlp = (p: string, llamaStyle: boolean): Mlp => {
      // creation order follows the forward's order of evaluation (sites' order)
      if (llamaStyle) {
        const gate = lin(`${p}gate_proj`);
        const up = lin(`${p}up_proj`);
        const actSite = mlpActSite(byName.get(`${p}down_proj.weight`)!);
        sites.set(actSite.name, actSite);
        return { gate, up, actSite, down: lin(`${p}down_proj`) };
      }
      const up = lin(`${p}c_fc`);
      const actSite = mlpActSite(byName.get(`${p}c_proj.weight`)!);
      sites.set(actSite.name, actSite);
      return { up, actSite, down: lin(`${p}c_proj`) };
    };
    const kvw = this.#kvHeads * this.#hd;
    const layers = (rest as unknown as { layers: number }).layers;
    this.#blocks = [];
    for (let i = 0; i < layers; i++) {
      const kCache = new Float32Array(this.#kv ? 0 : this.capacity * kvw);
      const vCache = new Float32Array(this.#kv ? 0 : this.capacity * kvw);
      if (gpt) {
        const p = `h.${i}.`;
        const b: Block = {
          norm1: vec(`${p}ln_1.weight`),
          norm1Bias: vec(`${p}ln_1.bias`),
          norm2: vec(`${p}ln_2.weight`),
          norm2Bias: vec(`${p}ln_2.bias`),
          ...(gpt.normRotation ? { rot1: vec(`${p}ln_1.rotation`), rot2: vec(`${p}ln_2.rotation`) } : {}),
          qkv: lin(`${p}attn.c_attn`),
          o: lin(`${p}attn.c_proj`),
          kCache,
          vCache,
        };
        if (gpt.moe) {
          b.router = lin(`${p}mlp.router`);
          b.experts = [];
          for (let e = 0; e < gpt.moe.experts; e++) b.experts.push(mlp(`${p}mlp.experts.${e}.`, false));
        } else b.mlp = mlp(`${p}mlp.`, false);
        this.#blocks.push(b);
      } else {
        const p = `model.layers.${i}.`;
        const b: Block = {
          norm1: vec(`${p}input_layernorm.weight`),
          norm2: vec(`${p}post_attention_layernorm.weight`),
          ...(llama!.normRotation ? { rot1: vec(`${p}input_layernorm.rotation`), rot2: vec(`${p}post_attention_layernorm.rotation`) } : {}),
          q: lin(`${p}self_attn.q_proj`),
          k: lin(`${p}self_attn.k_proj`),
          v: lin(`${p}self_attn.v_proj`),
          o: lin(`${p}self_attn.o_proj`),
          kCache,
          vCache,
        };
        if (llama!.moe) {
          b.router = lin(`${p}mlp.router`);
          b.experts = [];
          for (let e = 0; e < llama!.moe.experts; e++) b.experts.push(mlp(`${p}mlp.experts.${e}.`, true));
        } else b.mlp = mlp(`${p}mlp.`, true);
        this.#blocks.push(b);
      }
    }
    this.sites = sites;
    if (this.#kv) for (const b of this.#blocks) b.bitmap = this.#newBitmap();
    if (gpt) {
      this.#embed = vec('wte.weight');
      this.#pos = vec('wpe.weight');
      this.#normF = vec('ln_f.weight');
      this.#normFBias = vec('ln_f.bias');
      this.#head = this.#embed;
      this.#headTransposed = false;
    } else {
      this.#embed = vec('model.embed_tokens.weight');
      this.#normF = vec('model.norm.weight');
      if (llama!.tiedEmbeddings) {
        this.#head = this.#embed;
        this.#headTransposed = false;
      } else {
        this.#head = transposed(values.get('lm_head.weight')!, this.vocab, d);
        if (options.release && !copy) (values as Map<string, Float32Array>).delete('lm_head.weight');
        this.#headTransposed = true;
      }
      const half = this.#hd / 2;
      this.#invFreq = new Float64Array(half);
      for (let j = 0; j < half; j++) this.#invFreq[j] = Math.pow(llama!.ropeTheta, -(2 * j) / this.#hd);
    }

    const c = this.#chunk;
    let maxIn = d;
    let maxOut = d;
    for (const l of this.#linears) {
      maxIn = Math.max(maxIn, l.in);
      maxOut = Math.max(maxOut, l.out);
    }
    const hidden = this.#linears.reduce((m, l) => (l.info.role.endsWith('down') ? Math.max(m, l.in) : m), 0);
    const experts = this.#moe?.experts ?? 0;
    const topK = this.#moe?.topK ?? 0;
    this.#x = new Float32Array(c * d);
    this.#h = new Float32Array(c * d);
    this.#proj = new Float32Array(gpt ? c * 3 * d : 0);
    this.#qb = new Float32Array(c * d);
    this.#kb = new Float32Array(c * kvw);
    this.#vb = new Float32Array(c * kvw);
    this.#att = new Float32Array(c * d);
    this.#tmp = new Float32Array(c * d);
    this.#ha = new Float32Array(c * hidden);
    this.#hb = new Float32Array(llama ? c * hidden : 0);
    this.#xe = new Float32Array(experts ? c * d : 0);
    this.#ye = new Float32Array(experts ? c * d : 0);
    this.#routerLogits = new Float32Array(c * experts);
    this.#chosen = new Int32Array(c * topK);
    this.#gates = new Float32Array(c * topK);
    this.#used = new Uint8Array(experts);
    this.#rows = new Int32Array(c);
    this.#rowGate = new Float32Array(c);
    this.#hookBuf = new Float32Array(this.#hook ? c * maxIn : 0);
    this.#xT = new Float32Array(c > 1 ? c * maxIn : 0);
    this.#yT = new Float32Array(c > 1 ? c * maxOut : 0);
    this.#liveChannels = new Uint8Array(c > 1 ? maxIn : 0);
    this.#scores = new Float32Array(this.capacity);
    const attention = (gpt ?? llama!).attention;
    if (attention) this.#pattern = specLayout(attention, this.capacity);
    this.#keep = new Uint8Array(attention ? this.capacity : 0);
    this.#ropeCos = new Float32Array(llama ? (c * this.#hd) / 2 : 0);
    this.#ropeSin = new Float32Array(llama ? (c * this.#hd) / 2 : 0);
    this.#last = new Float32Array(d);
    this.#logits = new Float32Array(this.vocab);
    this.#args = { transW: true, rows: 0, cols: 0, n: 1, alpha: 1, w: this.#last, wOffset: 0, ldw: 1, x: this.#last, xOffset: 0, ldx: 1, beta: 0, y: this.#last, yOffset: 0, ldy: 1 };
  }

  /**
   * A decoder of `spec` with parameter values by name (the tfjs models' names and [out, in] linear
   * layouts). Linear weights are transposed into copies; the embeddings and the norm / bias vectors
   * are kept by reference (do not change them while the decoder is in use).
   */
  static fromValues(spec: ModelSpec, values: ReadonlyMap<string, Float32Array>, options: DecoderOptions = {}): Decoder {
    return new Decoder(spec, values, options, false);
  }

  /** A decoder of a model's current parameters (copied out; later changes to the model are not seen). */
  static fromModel(model: LanguageModel, options: DecoderOptions = {}): Decoder {
    const values = new Map<string, Float32Array>();
    for (const [name, v] of Object.entries(model.params)) values.set(name, v.dataSync() as Float32Array);
    const { release: _release, ...rest } = options;
    return new Decoder(model.spec, values, rest, true);
  }

  /** Tokens in the cache: the position the next token takes. */
  get position(): number {
    return this.#position;
  }

  /** Empties the cache (the statistics stay; resetStats clears them). */
  reset(): void {
    this.#position = 0;
    if (this.#kv) for (const b of this.#blocks) b.bitmap = this.#newBitmap();
  }

  /** Whether the KV cache is pruned (built with `kv`). */
  get kvPruned(): boolean {
    return this.#kv !== undefined;
  }

  /** Bytes the KV cache of the cached positions takes, all blocks: the bitmap layout with `kv`, else dense float32. */
  kvBytes(): number {
    return this.kvStats().bytes;
  }

  /** The KV cache's bytes against the dense float32 cache of the same positions, and its achieved sparsity. */
  kvStats(): DecoderKVStats {
    const dense = 2 * this.#position * this.#kvHeads * this.#hd * 4 * this.#blocks.length;
    if (!this.#kv) return { positions: this.#position, bytes: dense, denseBytes: dense, sparsity: 0 };
    let bytes = 0;
    let kept = 0;
    for (const b of this.#blocks) {
      const c = b.bitmap!;
      bytes += c.bytes();
      kept += c.kValues.length + c.vValues.length;
    }
    const total = dense / 4;
    return { positions: this.#position, bytes, denseBytes: dense, sparsity: total === 0 ? 0 : 1 - kept / total };
  }

  #newBitmap(): BitmapKVCache {
    const { kSparsity, vSparsity } = this.#kv!;
    return new BitmapKVCache({ kvHeads: this.#kvHeads, headDim: this.#hd, kSparsity, vSparsity, capacity: Math.min(this.capacity, 256) });
  }

  /** Next-token logits [vocab] after `token` (the decoder's buffer: valid until the next call). */
  step(token: number): Float32Array {
    if (this.#position + 1 > this.capacity) throw new ContextOverflowError(this.capacity, this.#position, 1);
    this.#checkToken(token, 0);
    this.#kernel = getKernel('gemvSparseInput', this.#backend);
    this.#embed1(token, this.#position, 0);
    return this.#run(1, true);
  }

  /** Runs a prompt (in chunks of prefillChunk tokens) and returns the last position's next-token logits. */
  prefill(tokens: ArrayLike<number>): Float32Array {
    const n = tokens.length;
    if (n === 0) throw new ArgumentError('decoder: prefill needs at least one token');
    if (this.#position + n > this.capacity) throw new ContextOverflowError(this.capacity, this.#position, n);
    for (let i = 0; i < n; i++) this.#checkToken(tokens[i]!, i);
    this.#kernel = getKernel('gemvSparseInput', this.#backend);
    for (let start = 0; start < n; start += this.#chunk) {
      const m = Math.min(this.#chunk, n - start);
      for (let t = 0; t < m; t++) this.#embed1(tokens[start + t]!, this.#position + t, t);
      this.#run(m, start + m === n);
    }
    return this.#logits;
  }

  /** Per linear layer, the zero inputs counted since the last resetStats (empty unless built with `stats: true`). */
  stats(): LinearInputStats[] {
    if (!this.#collect) return [];
    return this.#linears.map((l) => ({
      site: l.site.name,
      role: l.info.role,
      block: l.info.block,
      entries: l.entries,
      zeros: l.zeros,
      density: l.entries === 0 ? 1 : 1 - l.zeros / l.entries,
    }));
  }

  resetStats(): void {
    for (const l of this.#linears) {
      l.zeros = 0;
      l.entries = 0;
    }
  }

  #checkToken(token: number, at: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocab) throw new ArgumentError(`decoder: token ${token}${at ? ` (at ${at})` : ''} is outside 0..${this.vocab - 1}`);
  }

  /** Row `t` of #x: the embedding of `token` (plus the learned position `position` for gpt). */
  #embed1(token: number, position: number, t: number): void {
    const d = this.#d;
    const row = this.#x;
    const o = t * d;
    const e = token * d;
    if (this.#pos) {
      const p = position * d;
      for (let c = 0; c < d; c++) row[o + c] = this.#embed[e + c]! + this.#pos[p + c]!;
    } else for (let c = 0; c < d; c++) row[o + c] = this.#embed[e + c]!;
  }

  /** The forward pass of the n tokens in #x at positions position.., then the position moves on; logits of the last when `head`. */
  #run(n: number, head: boolean): Float32Array {
    const d = this.#d;
    const x = this.#x;
    const h = this.#h;
    const tmp = this.#tmp;
    if (this.#invFreq) this.#fillRope(n);
    for (const b of this.#blocks) {
      this.#norm(x, h, n, b.norm1, b.norm1Bias);
      if (b.rot1) this.#rotate(h, n, b.rot1);
      this.#attention(b, n);
      for (let i = 0; i < n * d; i++) x[i]! += tmp[i]!;
      this.#norm(x, h, n, b.norm2, b.norm2Bias);
      if (b.rot2) this.#rotate(h, n, b.rot2);
      if (b.mlp) this.#mlp(b.mlp, h, n, tmp);
      else this.#mixture(b, n);
      for (let i = 0; i < n * d; i++) x[i]! += tmp[i]!;
    }
    this.#position += n;
    if (!head) return this.#logits;
    // the final norm and the output layer of the last position only
    const last = this.#last;
    for (let c = 0; c < d; c++) last[c] = x[(n - 1) * d + c]!;
    this.#norm(last, last, 1, this.#normF, this.#normFBias);
    const a = this.#args;
    a.transW = this.#headTransposed;
    a.rows = this.vocab;
    a.cols = d;
    a.n = 1;
    a.w = this.#head;
    a.ldw = this.#headTransposed ? this.vocab : d;
    a.x = last;
    a.ldx = 1;
    a.y = this.#logits;
    a.ldy = 1;
    this.#kernel!(a);
    return this.#logits;
  }

  /** Layer norm (gpt, with bias) or RMSNorm (llama) of n rows of src into dst (may be the same array). */
  #norm(src: Float32Array, dst: Float32Array, n: number, gain: Float32Array, bias: Float32Array | undefined): void {
    const d = this.#d;
    for (let t = 0; t < n; t++) {
      const o = t * d;
      if (bias) {
        let mean = 0;
        for (let c = 0; c < d; c++) mean += src[o + c]!;
        mean /= d;
        let v = 0;
        for (let c = 0; c < d; c++) {
          const z = src[o + c]! - mean;
          v += z * z;
        }
        const r = 1 / Math.sqrt(v / d + 1e-5);
        for (let c = 0; c < d; c++) dst[o + c] = (src[o + c]! - mean) * r * gain[c]! + bias[c]!;
      } else {
        let ms = 0;
        for (let c = 0; c < d; c++) ms += src[o + c]! * src[o + c]!;
        const r = 1 / Math.sqrt(ms / d + this.#normEps);
        for (let c = 0; c < d; c++) dst[o + c] = src[o + c]! * r * gain[c]!;
      }
    }
  }

  /** h [n, d] = h R for a norm's rotation R [d, d] (through #tmp, which is free between a norm and its sublayer). */
  #rotate(h: Float32Array, n: number, r: Float32Array): void {
    const d = this.#d;
    this.#product(r, d, d, h, n, this.#tmp, 0);
    h.set(this.#tmp.subarray(0, n * d));
  }

  /**
   * y [n, rows] = x [n, cols] W + beta y for W [cols, rows] row-major ([in, out]): the matrix-vector kernel
   * (gemvSparseInput, which skips zero inputs) for one token, the dense gemm for several.
   */
  #product(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number, y: Float32Array, beta: 0 | 1): void {
    if (n === 1) {
      const a = this.#args;
      a.transW = true;
      a.rows = rows;
      a.cols = cols;
      a.n = 1;
      a.w = w;
      a.ldw = rows;
      a.x = x;
      a.ldx = 1;
      a.y = y;
      a.ldy = 1;
      a.beta = beta;
      this.#kernel!(a);
      a.beta = 0;
      return;
    }
    const g = this.#gemmArgs;
    g.m = n;
    g.n = rows;
    g.k = cols;
    g.a = x;
    g.lda = cols;
    g.b = w;
    g.ldb = rows;
    g.c = y;
    g.ldc = rows;
    g.beta = beta;
    getKernel('gemm')(g);
    g.beta = 0;
  }

  /** y [n, out] = x [n, in] Wᵀ (+ the hook's correction) + b, through gemvSparseInput on W [in, out]. */
  #linear(l: Linear, x: Float32Array, n: number, y: Float32Array): void {
    const { in: cols, out: rows } = l;
    let input = x;
    let add: Float32Array | undefined;
    if (this.#hook) {
      const len = n * cols;
      input = this.#view(this.#hookBuf, len);
      input.set(x.subarray(0, len));
      add = this.#hook(l.site, input, n);
      if (add !== undefined && (!(add instanceof Float32Array) || add.length !== n * rows)) {
        throw new ArgumentError(`decoder: the activation hook's correction at ${l.site.name} must be a Float32Array of ${n * rows} values ([${n}, ${rows}]), got ${add instanceof Float32Array ? add.length : typeof add}`);
      }
    }
    if (this.#collect) {
      let z = 0;
      const len = n * cols;
      for (let i = 0; i < len; i++) if (input[i] === 0) z++;
      l.zeros += z;
      l.entries += len;
    }
    const b = l.bias;
    let biased = false;
    if (n === 1) {
      // with a bias (and no correction to add first): y = b, then the kernel adds x Wᵀ to it (beta 1)
      biased = b !== undefined && !add;
      if (biased) y.set(b!);
      this.#product(l.w, rows, cols, input, 1, y, biased ? 1 : 0);
    } else if (this.#skippable(input, n, cols) < SKIP_WORTH_IT) {
      // several tokens whose zeros rarely line up (per-token sparsity): few whole input channels can be
      // skipped, so the dense product (the same result, zeros in place) is the faster one
      this.#product(l.w, rows, cols, input, n, y, 0);
    } else {
      // the kernel takes X [in, n] and writes Y [out, n]
      const a = this.#args;
      a.transW = true;
      a.rows = rows;
      a.cols = cols;
      a.n = n;
      a.w = l.w;
      a.ldw = rows;
      const xT = this.#xT;
      for (let t = 0; t < n; t++) for (let i = 0; i < cols; i++) xT[i * n + t] = input[t * cols + i]!;
      a.x = xT;
      a.ldx = n;
      a.y = this.#yT;
      a.ldy = n;
      this.#kernel!(a);
      const yT = this.#yT;
      for (let t = 0; t < n; t++) for (let o = 0; o < rows; o++) y[t * rows + o] = yT[o * n + t]!;
    }
    if (add) for (let i = 0; i < n * rows; i++) y[i]! += add[i]!;
    if (b && !biased) for (let t = 0; t < n; t++) for (let o = 0; o < rows; o++) y[t * rows + o]! += b[o]!;
  }

  /** The fraction of the `cols` input channels that are zero for all `n` tokens of x [n, cols]. */
  #skippable(x: Float32Array, n: number, cols: number): number {
    const live = this.#liveChannels;
    live.fill(0, 0, cols);
    for (let t = 0; t < n; t++) {
      const o = t * cols;
      for (let i = 0; i < cols; i++) if (x[o + i] !== 0) live[i] = 1;
    }
    let dead = 0;
    for (let i = 0; i < cols; i++) if (live[i] === 0) dead++;
    return dead / cols;
  }

  /** The first `len` values of a scratch buffer as an array of that length (views cached, so one-token passes allocate nothing). */
  #view(buf: Float32Array, len: number): Float32Array {
    if (buf.length === len) return buf;
    let byLen = this.#views.get(buf);
    if (byLen === undefined) {
      byLen = new Map();
      this.#views.set(buf, byLen);
    }
    let v = byLen.get(len);
    if (v === undefined) {
      v = buf.subarray(0, len);
      byLen.set(len, v);
    }
    return v;
  }

  /** cos / sin [n, hd/2] of the positions position.. (as llama.ts's tables, in float32). */
  #fillRope(n: number): void {
    const half = this.#hd / 2;
    const inv = this.#invFreq!;
    for (let t = 0; t < n; t++) {
      const pos = this.#position + t;
      for (let j = 0; j < half; j++) {
        const angle = pos * inv[j]!;
        this.#ropeCos[t * half + j] = Math.cos(angle);
        this.#ropeSin[t * half + j] = Math.sin(angle);
      }
    }
  }

  /** HF's half-split rotation of every head of n rows [n, heads*hd] in place. */
  #rope(x: Float32Array, n: number, heads: number): void {
    const hd = this.#hd;
    const half = hd / 2;
    const w = heads * hd;
    for (let t = 0; t < n; t++) {
      for (let h = 0; h < heads; h++) {
        const o = t * w + h * hd;
        for (let j = 0; j < half; j++) {
          const c = this.#ropeCos[t * half + j]!;
          const s = this.#ropeSin[t * half + j]!;
          const x1 = x[o + j]!;
          const x2 = x[o + j + half]!;
          x[o + j] = x1 * c - x2 * s;
          x[o + j + half] = x2 * c + x1 * s;
        }
      }
    }
  }

  /** Causal self-attention of the n tokens in #h (their keys and values join the cache); output [n, d] in #tmp. */
  #attention(b: Block, n: number): void {
    const d = this.#d;
    const hd = this.#hd;
    const heads = this.#heads;
    const kvHeads = this.#kvHeads;
    const kvw = kvHeads * hd;
    const pos0 = this.#position;
    let q: Float32Array;
    let qStride: number;
    if (b.qkv) {
      const proj = this.#proj;
      this.#linear(b.qkv, this.#h, n, proj);
      if (b.bitmap) for (let t = 0; t < n; t++) b.bitmap.append(proj.subarray(t * 3 * d + d, t * 3 * d + 2 * d), proj.subarray(t * 3 * d + 2 * d, t * 3 * d + 3 * d));
      else for (let t = 0; t < n; t++) {
        const o = t * 3 * d;
        const c = (pos0 + t) * kvw;
        for (let i = 0; i < d; i++) {
          b.kCache[c + i] = proj[o + d + i]!;
          b.vCache[c + i] = proj[o + 2 * d + i]!;
        }
      }
      q = proj;
      qStride = 3 * d;
    } else {
      this.#linear(b.q!, this.#h, n, this.#qb);
      this.#linear(b.k!, this.#h, n, this.#kb);
      this.#linear(b.v!, this.#h, n, this.#vb);
      this.#rope(this.#qb, n, heads);
      this.#rope(this.#kb, n, kvHeads);
      if (b.bitmap) for (let t = 0; t < n; t++) b.bitmap.append(this.#kb.subarray(t * kvw, (t + 1) * kvw), this.#vb.subarray(t * kvw, (t + 1) * kvw));
      else {
        const c = pos0 * kvw;
        for (let i = 0; i < n * kvw; i++) {
          b.kCache[c + i] = this.#kb[i]!;
          b.vCache[c + i] = this.#vb[i]!;
        }
      }
      q = this.#qb;
      qStride = d;
    }
    if (b.bitmap) {
      this.#bitmapAttention(b.bitmap, n, q, qStride, pos0);
      this.#linear(b.o, this.#att, n, this.#tmp);
      return;
    }
    if (this.#denseKernelAttention(b, n, q, qStride, pos0)) {
      this.#linear(b.o, this.#att, n, this.#tmp);
      return;
    }
    const g = heads / kvHeads;
    const scale = 1 / Math.sqrt(hd);
    const att = this.#att;
    const scores = this.#scores;
    const K = b.kCache;
    const V = b.vCache;
    const pattern = this.#pattern;
    const keep = this.#keep;
    for (let t = 0; t < n; t++) {
      const last = pos0 + t;
      if (pattern) for (let j = 0; j <= last; j++) keep[j] = layoutAllows(pattern, last, j) ? 1 : 0;
      for (let h = 0; h < heads; h++) {
        const qo = t * qStride + h * hd;
        const kvo = Math.floor(h / g) * hd;
        let max = -Infinity;
        for (let j = 0; j <= last; j++) {
          if (pattern && !keep[j]) continue;
          const ko = j * kvw + kvo;
          let s = 0;
          for (let c = 0; c < hd; c++) s += q[qo + c]! * K[ko + c]!;
          s *= scale;
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) {
          if (pattern && !keep[j]) {
            scores[j] = 0;
            continue;
          }
          const e = Math.exp(scores[j]! - max);
          scores[j] = e;
          sum += e;
        }
        const out = t * d + h * hd;
        for (let c = 0; c < hd; c++) att[out + c] = 0;
        const inv = 1 / sum;
        for (let j = 0; j <= last; j++) {
          const p = scores[j]! * inv;
          const vo = j * kvw + kvo;
          for (let c = 0; c < hd; c++) att[out + c]! += p * V[vo + c]!;
        }
      }
    }
    this.#linear(b.o, att, n, this.#tmp);
  }

  /**
   * Attention of the n queries in q (row t at t * qStride, [heads, hd]) over the pruned cache (which
   * already holds their positions pos0..pos0+n-1), through attentionBitmapKV: query t reads positions
   * 0..pos0+t, or those the model's pattern keeps (one run of positions: views of the cache; several
   * runs, as sinks + a window: those rows gathered first). Output [n, d] in #att.
   */
  #bitmapAttention(cache: BitmapKVCache, n: number, q: Float32Array, qStride: number, pos0: number): void {
    const d = this.#d;
    const kvHeads = this.#kvHeads;
    const rowBytes = Math.ceil(this.#hd / 8);
    const kernel = getKernel('attentionBitmapKV', this.#kv!.backend);
    const kBits = cache.kBits;
    const vBits = cache.vBits;
    const kValues = cache.kValues;
    const vValues = cache.vValues;
    const kStart = cache.kStart;
    const vStart = cache.vStart;
    let a = this.#kvArgs;
    if (a === undefined) {
      a = { heads: this.#heads, kvHeads, headDim: this.#hd, positions: 0, q, qOffset: 0, kBits, vBits, kValues, vValues, kStart, vStart, out: this.#att, outOffset: 0 };
      this.#kvArgs = a;
    }
    a.q = q;
    a.out = this.#att;
    const pattern = this.#pattern;
    const keep = this.#keep;
    for (let t = 0; t < n; t++) {
      const last = pos0 + t;
      a.qOffset = t * qStride;
      a.outOffset = t * d;
      // the kept positions as runs [lo, hi)
      let lo = 0;
      let hi = last + 1;
      let runs = 1;
      if (pattern) {
        runs = 0;
        lo = -1;
        for (let j = 0; j <= last; j++) {
          const k = layoutAllows(pattern, last, j);
          keep[j] = k ? 1 : 0;
          if (k && (j === 0 || !keep[j - 1])) {
            runs++;
            if (lo < 0) lo = j;
          }
          if (k) hi = j + 1;
        }
      }
      if (runs <= 1) {
        if (runs === 0) {
          this.#att.fill(0, t * d, (t + 1) * d);
          continue;
        }
        a.positions = hi - lo;
        a.kBits = kBits.subarray(lo * kvHeads * rowBytes, hi * kvHeads * rowBytes);
        a.vBits = vBits.subarray(lo * kvHeads * rowBytes, hi * kvHeads * rowBytes);
        a.kStart = kStart.subarray(lo * kvHeads, hi * kvHeads + 1);
        a.vStart = vStart.subarray(lo * kvHeads, hi * kvHeads + 1);
        a.kValues = kValues;
        a.vValues = vValues;
      } else {
        const g = this.#gatherBuffers(cache);
        let positions = 0;
        let kAt = 0;
        let vAt = 0;
        g.kStart[0] = 0;
        g.vStart[0] = 0;
        for (let j = 0; j <= last; ) {
          if (!keep[j]) {
            j++;
            continue;
          }
          let e = j;
          while (e <= last && keep[e]) e++;
          // positions j..e-1: their kvHeads rows each, bits, values and starts (rebased)
          const r0 = j * kvHeads;
          const r1 = e * kvHeads;
          const at = positions * kvHeads;
          g.kBits.set(kBits.subarray(r0 * rowBytes, r1 * rowBytes), at * rowBytes);
          g.vBits.set(vBits.subarray(r0 * rowBytes, r1 * rowBytes), at * rowBytes);
          g.kValues.set(kValues.subarray(kStart[r0]!, kStart[r1]!), kAt);
          g.vValues.set(vValues.subarray(vStart[r0]!, vStart[r1]!), vAt);
          for (let r = r0 + 1; r <= r1; r++) {
            g.kStart[at + r - r0] = kAt + kStart[r]! - kStart[r0]!;
            g.vStart[at + r - r0] = vAt + vStart[r]! - vStart[r0]!;
          }
          kAt += kStart[r1]! - kStart[r0]!;
          vAt += vStart[r1]! - vStart[r0]!;
          positions += e - j;
          j = e;
        }
        const rows = positions * kvHeads;
        a.positions = positions;
        a.kBits = g.kBits.subarray(0, rows * rowBytes);
        a.vBits = g.vBits.subarray(0, rows * rowBytes);
        a.kStart = g.kStart.subarray(0, rows + 1);
        a.vStart = g.vStart.subarray(0, rows + 1);
        a.kValues = g.kValues.subarray(0, kAt);
        a.vValues = g.vValues.subarray(0, vAt);
      }
      kernel(a);
    }
  }

  /**
   * Attention over the dense cache through the registry's attentionBitmapKV (native when loaded): the
   * dense cache is that kernel's layout with every bit set (values in (position, kvHead, dim) order, row
   * r starting at r * headDim), so it runs on the cache itself, nothing copied. Query t reads positions
   * 0..pos0+t, or the one run of positions the model's pattern keeps; returns false (nothing computed)
   * when some query's kept positions form several runs, which the loop in #attention handles.
   */
  #denseKernelAttention(b: Block, n: number, q: Float32Array, qStride: number, pos0: number): boolean {
    const pattern = this.#pattern;
    const runs: [number, number][] = [];
    for (let t = 0; t < n; t++) {
      const last = pos0 + t;
      if (!pattern) {
        runs.push([0, last + 1]);
        continue;
      }
      let lo = -1;
      let hi = -1;
      for (let j = 0; j <= last; j++) {
        if (!layoutAllows(pattern, last, j)) continue;
        if (lo < 0) lo = j;
        else if (hi !== j) return false;
        hi = j + 1;
      }
      runs.push(lo < 0 ? [0, 0] : [lo, hi]);
    }
    const kvHeads = this.#kvHeads;
    const hd = this.#hd;
    const rowBytes = Math.ceil(hd / 8);
    let view = this.#denseView;
    if (view === undefined) {
      const rows = this.capacity * kvHeads;
      const bits = new Uint8Array(rows * rowBytes).fill(0xff);
      // padding bits past headDim stay clear
      if (hd % 8 !== 0) for (let r = 0; r < rows; r++) bits[r * rowBytes + rowBytes - 1] = (1 << (hd % 8)) - 1;
      view = { bits, start: Int32Array.from({ length: rows + 1 }, (_, r) => r * hd) };
      this.#denseView = view;
    }
    const kernel = getKernel('attentionBitmapKV');
    const d = this.#d;
    for (let t = 0; t < n; t++) {
      const [lo, hi] = runs[t]!;
      if (hi <= lo) {
        this.#att.fill(0, t * d, (t + 1) * d);
        continue;
      }
      const bits = view.bits.subarray(lo * kvHeads * rowBytes, hi * kvHeads * rowBytes);
      const start = view.start.subarray(lo * kvHeads, hi * kvHeads + 1);
      kernel({ heads: this.#heads, kvHeads, headDim: hd, positions: hi - lo, q, qOffset: t * qStride, kBits: bits, vBits: bits, kValues: b.kCache, vValues: b.vCache, kStart: start, vStart: start, out: this.#att, outOffset: t * d });
    }
    return true;
  }

  /** Scratch for gathered cache rows, as large as a full context of the cache. */
  #gatherBuffers(cache: BitmapKVCache): KVGather {
    let g = this.#gather;
    if (g === undefined) {
      const rows = this.capacity * this.#kvHeads;
      const rowBytes = Math.ceil(this.#hd / 8);
      g = {
        kBits: new Uint8Array(rows * rowBytes),
        vBits: new Uint8Array(rows * rowBytes),
        kValues: new Float32Array(rows * cache.kKeep),
        vValues: new Float32Array(rows * cache.vKeep),
        kStart: new Int32Array(rows + 1),
        vStart: new Int32Array(rows + 1),
      };
      this.#gather = g;
    }
    return g;
  }

  /** One MLP (plain or SwiGLU) of n rows of x [n, d] into out [n, d]. */
  #mlp(m: Mlp, x: Float32Array, n: number, out: Float32Array): void {
    const a = this.#ha;
    const hidden = m.down.in;
    const len = n * hidden;
    if (m.gate) {
      // llama's order: gate, its activation (the site), up, down of gate * up
      this.#linear(m.gate, x, n, a);
      applyNonlinearity(this.#act, a, len);
      this.#activationSite(m.actSite, a, n, len);
      const u = this.#hb;
      this.#linear(m.up, x, n, u);
      for (let i = 0; i < len; i++) a[i]! *= u[i]!;
    } else {
      this.#linear(m.up, x, n, a);
      applyNonlinearity(this.#act, a, len);
      this.#activationSite(m.actSite, a, n, len);
    }
    this.#linear(m.down, a, n, out);
  }

  /** The hook at an MLP activation: it may zero a [n, hidden] in place; a returned term is an error. */
  #activationSite(site: Site, a: Float32Array, n: number, len: number): void {
    if (!this.#hook) return;
    const r = this.#hook(site, this.#view(a, len), n);
    if (r !== undefined) throw new ArgumentError(`decoder: the activation hook returned a product term at ${site.name}, which is not a linear input`);
  }

  /** A mixture of experts on #h: top-k routing with softmax gates over the chosen logits; output in #tmp. */
  #mixture(b: Block, n: number): void {
    const { experts, topK } = this.#moe!;
    const d = this.#d;
    const logits = this.#routerLogits;
    this.#linear(b.router!, this.#h, n, logits);
    const chosen = this.#chosen;
    const gates = this.#gates;
    const used = this.#used;
    for (let t = 0; t < n; t++) {
      used.fill(0);
      const row = t * experts;
      // highest logit first, the lower index on ties (layers.ts topKRouting)
      for (let k = 0; k < topK; k++) {
        let best = -1;
        for (let e = 0; e < experts; e++) {
          if (used[e]) continue;
          if (best < 0 || logits[row + e]! > logits[row + best]!) best = e;
        }
        used[best] = 1;
        chosen[t * topK + k] = best;
      }
      const max = logits[row + chosen[t * topK]!]!;
      let sum = 0;
      for (let k = 0; k < topK; k++) {
        const e = Math.exp(logits[row + chosen[t * topK + k]!]! - max);
        gates[t * topK + k] = e;
        sum += e;
      }
      for (let k = 0; k < topK; k++) gates[t * topK + k]! /= sum;
    }
    const out = this.#tmp;
    out.fill(0, 0, n * d);
    const rows = this.#rows;
    const rowGate = this.#rowGate;
    const xe = this.#xe;
    const ye = this.#ye;
    for (let e = 0; e < experts; e++) {
      let m = 0;
      for (let t = 0; t < n; t++) {
        for (let k = 0; k < topK; k++) {
          if (chosen[t * topK + k] === e) {
            rows[m] = t;
            rowGate[m] = gates[t * topK + k]!;
            m++;
            break;
          }
        }
      }
      if (m === 0) continue;
      for (let i = 0; i < m; i++) for (let c = 0; c < d; c++) xe[i * d + c] = this.#h[rows[i]! * d + c]!;
      this.#mlp(b.experts![e]!, xe, m, ye);
      for (let i = 0; i < m; i++) {
        const o = rows[i]! * d;
        const gi = rowGate[i]!;
        for (let c = 0; c < d; c++) out[o + c]! += gi * ye[i * d + c]!;
      }
    }
  }
}
