// Selective LoRA: a LoRA update split into `blocks` rank blocks, each switched on or off by an indicator
// gate, ΔW = scaling · Σ_b 1[g_b > 0] B_b A_b. The gates g [blocks] train with the blocks through a
// straight-through estimator (forward: the hard indicator; backward: the gradient of g_b is
// ⟨∂L/∂ΔW, scaling · B_b A_b⟩, as if the indicator were the identity), so a block the task does not need
// can switch itself off and is then absent from the merged weight. With blocks = 1 the gate selects the
// whole adapter of a layer. Gates start at gateInit (> 0: on). Trainable: r (out + in) + blocks.
// Sparsity pressure (config `lambda`, default 0 = none): the tfjs form's training hooks add
// λ · Σ_b max(g_b, 0) to the loss, an L1 penalty on the gates of the blocks that are on, so blocks whose
// task gradient does not outweigh λ are driven to g_b ≤ 0 and drop out of ΔW; the hooks' finish counts
// the blocks still active (the trainer puts that count in the stage summary and a 'blocks' event).
import { ArgumentError, matmul, tensor, type Float32Tensor } from '@sparse/tensor';
import type { AdapterState } from '../types.js';
import { loraFactors } from '../lora/variant.js';
import { defineFamilyVariant } from '../helpers/family.js';
import { selectiveLoRAConfigSchema, type SelectiveLoRAConfig } from './config.js';

/** 1 for blocks whose gate is on. */
export function selectiveIndicator(state: AdapterState): Float32Array {
  return Float32Array.from(state.params.lora_gate!.data, (g) => (g > 0 ? 1 : 0));
}

/** A's rows scaled by scaling · 1[g_b > 0] of their block. */
function gatedA(state: AdapterState<SelectiveLoRAConfig>): Float32Tensor {
  const a = state.params.lora_A!;
  const on = selectiveIndicator(state);
  const { r, alpha, blocks } = state.config;
  const per = r / blocks;
  const inp = a.shape[1]!;
  return tensor(Float32Array.from(a.data, (v, k) => v * on[Math.floor(Math.floor(k / inp) / per)]! * (alpha / r)), a.shape);
}

export const selectiveLoRAVariant = defineFamilyVariant<SelectiveLoRAConfig>({
  name: 'selective-lora',
  describe: 'Selective LoRA: rank blocks switched on by indicator gates 1[g_b > 0], trained by straight-through estimation',
  paper: 'none (this library\'s own method): LoRA split into rank blocks behind indicator gates trained straight through, with an optional L1 hinge on the gates',
  differs: [],
  schema: selectiveLoRAConfigSchema,
  init(base, c, rng) {
    if (c.r % c.blocks !== 0) throw new ArgumentError(`selective-lora.init: blocks = ${c.blocks} does not divide r = ${c.r}`);
    const [out, inp] = base.shape as [number, number];
    return {
      ...loraFactors(out, inp, c.r, rng),
      lora_gate: tensor(new Float32Array(c.blocks).fill(c.gateInit), [c.blocks]),
    };
  },
  delta: (state) => matmul(state.params.lora_B!, gatedA(state)),
  forwardDelta: (x, state) => matmul(matmul(x, gatedA(state), { transB: true }), state.params.lora_B!, { transB: true }),
  trainable: (shape, c) => {
    if (c.r % c.blocks !== 0) throw new ArgumentError(`selective-lora: blocks = ${c.blocks} does not divide r = ${c.r}`);
    return c.r * (shape[0] + shape[1]) + c.blocks;
  },
});
