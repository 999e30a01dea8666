// @sparse/lora-variants: low-rank and sparsity-preserving adapters on plain Tensors (LoRA, rsLoRA, SQFT,
// SPP), merges that keep a sparse base's mask, and the PEFT file layout. tfjs training lives in ./tfjs,
// file I/O in ./node.
export * from './variants/index.js';
export * from './peft.js';
export * from './sft/index.js';
export * from './zeroth/index.js';
