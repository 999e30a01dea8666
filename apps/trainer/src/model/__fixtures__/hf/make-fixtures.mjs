// Writes the Hugging Face golden files of this folder BY HAND from the published formats, with no code of
// this repository: safetensors bytes are an 8-byte little-endian header length, a JSON header of
// { name: { dtype, shape, data_offsets } } plus "__metadata__" (padded with spaces to 8 bytes), then the
// raw little-endian data.
//   gpt2/         a GPT2LMHeadModel checkpoint (config.json + model.safetensors): `transformer.` names,
//                 Conv1D weights stored [in, out], lm_head tied to wte and not stored
//   llama/        a LlamaForCausalLM checkpoint: `model.layers.N...` names, Linear weights [out, in]
//   gpt2-lora/    a PEFT LoRA adapter for gpt2/: base_model.model.transformer.h.0.attn.c_attn.lora_A.weight
//                 [r, in] and .lora_B.weight [out, r] (PEFT's LoRA layer over a Conv1D keeps the Linear
//                 shapes and transposes only the merged delta), "fan_in_fan_out": true
//   llama-sqft/   a PEFT LoRA adapter for llama/ (q_proj, v_proj) plus our sparse_adapter_config.json (SQFT)
// Every value is (((i * 5 + t * 3) % 17) - 8) / 16, exact in F32, where t numbers the tensors of one file
// in the order listed below and i is the element's row-major index in the stored layout.
// Run `node make-fixtures.mjs` in this folder; its output is committed beside it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function safetensors(entries) {
  const header = {};
  const chunks = [];
  let offset = 0;
  entries.forEach(([name, shape], t) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (((i * 5 + t * 3) % 17) - 8) / 16;
    const bytes = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) bytes.writeFloatLE(data[i], i * 4);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  });
  header.__metadata__ = { format: 'pt' };
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), ...chunks]);
}

function write(dir, files) {
  mkdirSync(join(here, dir), { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(here, dir, name), typeof content === 'string' ? content : Buffer.isBuffer(content) ? content : `${JSON.stringify(content, null, 2)}\n`);
  }
}

// GPT-2: vocab 8, n_positions 4, n_embd 4, n_layer 1, n_head 2, n_inner 8.
write('gpt2', {
  'config.json': {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: 8,
    n_positions: 4,
    n_embd: 4,
    n_layer: 1,
    n_head: 2,
    n_inner: 8,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    tie_word_embeddings: true,
  },
  'model.safetensors': safetensors([
    ['transformer.wte.weight', [8, 4]],
    ['transformer.wpe.weight', [4, 4]],
    ['transformer.h.0.ln_1.weight', [4]],
    ['transformer.h.0.ln_1.bias', [4]],
    ['transformer.h.0.attn.c_attn.weight', [4, 12]], // Conv1D [in = n_embd, out = 3 n_embd]
    ['transformer.h.0.attn.c_attn.bias', [12]],
    ['transformer.h.0.attn.c_proj.weight', [4, 4]],
    ['transformer.h.0.attn.c_proj.bias', [4]],
    ['transformer.h.0.ln_2.weight', [4]],
    ['transformer.h.0.ln_2.bias', [4]],
    ['transformer.h.0.mlp.c_fc.weight', [4, 8]], // Conv1D [in = n_embd, out = n_inner]
    ['transformer.h.0.mlp.c_fc.bias', [8]],
    ['transformer.h.0.mlp.c_proj.weight', [8, 4]], // Conv1D [in = n_inner, out = n_embd]
    ['transformer.h.0.mlp.c_proj.bias', [4]],
    ['transformer.ln_f.weight', [4]],
    ['transformer.ln_f.bias', [4]],
  ]),
});

// Llama: vocab 8, max_position_embeddings 4, hidden 4, 1 layer, 2 heads of 2, 1 KV head, intermediate 6.
write('llama', {
  'config.json': {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: 8,
    max_position_embeddings: 4,
    hidden_size: 4,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    intermediate_size: 6,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
  },
  'model.safetensors': safetensors([
    ['model.embed_tokens.weight', [8, 4]],
    ['model.layers.0.input_layernorm.weight', [4]],
    ['model.layers.0.self_attn.q_proj.weight', [4, 4]],
    ['model.layers.0.self_attn.k_proj.weight', [2, 4]],
    ['model.layers.0.self_attn.v_proj.weight', [2, 4]],
    ['model.layers.0.self_attn.o_proj.weight', [4, 4]],
    ['model.layers.0.post_attention_layernorm.weight', [4]],
    ['model.layers.0.mlp.gate_proj.weight', [6, 4]],
    ['model.layers.0.mlp.up_proj.weight', [6, 4]],
    ['model.layers.0.mlp.down_proj.weight', [4, 6]],
    ['model.norm.weight', [4]],
  ]),
});

// PEFT LoraConfig fields (to_dict names) for r = 2, lora_alpha = 4.
const lora = (base, targets, fanInFanOut) => ({
  base_model_name_or_path: base,
  task_type: 'CAUSAL_LM',
  inference_mode: true,
  target_modules: targets,
  modules_to_save: null,
  bias: 'none',
  revision: null,
  peft_type: 'LORA',
  r: 2,
  lora_alpha: 4,
  lora_dropout: 0,
  use_rslora: false,
  fan_in_fan_out: fanInFanOut,
  init_lora_weights: true,
  use_dora: false,
  rank_pattern: {},
  alpha_pattern: {},
  layers_to_transform: null,
  layers_pattern: null,
});

write('gpt2-lora', {
  'adapter_config.json': lora('gpt2', ['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj'], true),
  'adapter_model.safetensors': safetensors([
    ['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [2, 4]],
    ['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [12, 2]],
    ['base_model.model.transformer.h.0.attn.c_proj.lora_A.weight', [2, 4]],
    ['base_model.model.transformer.h.0.attn.c_proj.lora_B.weight', [4, 2]],
  ]),
});

write('llama-sqft', {
  'adapter_config.json': lora('models/tiny-llama', ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj'], false),
  'sparse_adapter_config.json': { sparse_variant: 'sqft', sqft_sparse_merge: true },
  'adapter_model.safetensors': safetensors([
    ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', [2, 4]],
    ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', [4, 2]],
    ['base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight', [2, 4]],
    ['base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight', [2, 2]],
  ]),
});
