// Asymmetric LoRA (Zhu et al., "Asymmetry in Low-Rank Adapters"): ΔW = scaling · B A with A random and
// frozen (it only has to extract features), B [out, r] trained from zero. A is PEFT's Kaiming-uniform
// U(±1/√in) or, with aInit 'orthogonal', a random matrix with orthonormal rows (the paper's analysis).
import { ArgumentError, matmul, qr, tensor, type Float32Tensor } from '@sparse/tensor';
import { loraFactors } from '../lora/variant.js';
import { defineFamilyVariant, transposed } from '../helpers/family.js';
import { asymmetricLoRAConfigSchema, type AsymmetricLoRAConfig } from './config.js';

export const ASYMMETRIC_LORA_FROZEN = ['lora_A'] as const;

export function asymmetricScaling(c: AsymmetricLoRAConfig): number {
  return c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
}

export const asymmetricLoRAVariant = defineFamilyVariant<AsymmetricLoRAConfig>({
  name: 'asymmetric-lora',
  describe: 'Asymmetric LoRA: ΔW = scaling · B A with a frozen random A; only B [out, r] trains',
  paper: 'Zhu et al. 2024, Asymmetry in Low-Rank Adapters of Foundation Models',
  differs: [
    'A defaults to PEFT\'s Kaiming-uniform draw (aInit: \'uniform\'); aInit: \'orthogonal\' is the random orthonormal A of the paper\'s analysis',
  ],
  schema: asymmetricLoRAConfigSchema,
  init(base, c, rng) {
    const [out, inp] = base.shape as [number, number];
    let a: Float32Tensor;
    if (c.aInit === 'orthogonal') {
      // Orthonormal rows need r <= in.
      if (c.r > inp) throw new ArgumentError(`asymmetric-lora.init: r = ${c.r} exceeds in = ${inp}; aInit 'orthogonal' needs r <= in`);
      const g = tensor(Float32Array.from({ length: inp * c.r }, () => rng.normal()), [inp, c.r]);
      a = transposed(qr(g).q as Float32Tensor);
    } else {
      return loraFactors(out, inp, c.r, rng);
    }
    return { lora_A: a, lora_B: tensor(new Float32Array(out * c.r), [out, c.r]) };
  },
  delta(state) {
    const d = matmul(state.params.lora_B!, state.params.lora_A!);
    const s = asymmetricScaling(state.config);
    for (let k = 0; k < d.data.length; k++) d.data[k] = d.data[k]! * s;
    return d;
  },
  forwardDelta(x, state) {
    const up = matmul(matmul(x, state.params.lora_A!, { transB: true }), state.params.lora_B!, { transB: true });
    const s = asymmetricScaling(state.config);
    for (let k = 0; k < up.data.length; k++) up.data[k] = up.data[k]! * s;
    return up;
  },
  trainable: (shape, c) => shape[0] * c.r,
});
