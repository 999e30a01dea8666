// LoRA (Hu et al.) with PEFT's conventions: A [r, in] Kaiming-uniform (a = √5, so U(±1/√in)), B [out, r]
// zeros, ΔW = scaling · B A with scaling = alpha / r, or alpha / √r for rsLoRA. SQFT is the same adapter
// whose merge always goes through the base mask.
import { ArgumentError, matmul, tensor, type Float32Tensor, type Random, type Tensor } from '@sparse/tensor';
import { addMasked, checkShape, checkState, floatMatrix, mergeMask, parseWith } from '../helpers/common.js';
import type { AdapterState, AdapterVariant, MergeOptions, UnmergeOptions } from '../types.js';
import { loraConfigSchema, type LoRAConfig } from './config.js';

/** LoRA's factors at init for an [out, in] weight: A [r, in] ~ U(±1/√in) (PEFT's Kaiming-uniform), B [out, r] = 0. */
export function loraFactors(out: number, inp: number, r: number, rng: Random): { lora_A: Float32Tensor; lora_B: Float32Tensor } {
  const bound = 1 / Math.sqrt(inp);
  const a = new Float32Array(r * inp);
  for (let k = 0; k < a.length; k++) a[k] = rng.uniform(-bound, bound);
  return { lora_A: tensor(a, [r, inp]), lora_B: tensor(new Float32Array(out * r), [out, r]) };
}

export function loraScaling(c: Pick<LoRAConfig, 'r' | 'alpha' | 'rslora'>): number {
  return c.rslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
}

function makeLoRAVariant(name: 'lora' | 'sqft', describe: string, provenance: { paper: string; differs: readonly string[] }): AdapterVariant<LoRAConfig> {
  const where = (op: string) => `${name}.${op}`;
  const delta = (state: AdapterState<LoRAConfig>): Float32Tensor => {
    checkState(state, name, where('delta'));
    const d = matmul(state.params.lora_B!, state.params.lora_A!);
    const s = loraScaling(state.config);
    for (let k = 0; k < d.data.length; k++) d.data[k] = d.data[k]! * s;
    return d;
  };
  const checkDensify = (opts: MergeOptions | UnmergeOptions | undefined, op: string) => {
    // SQFT's point is the masked merge; a dense merge is plain LoRA, so asking SQFT for one is an error.
    if (name === 'sqft' && opts?.densify) throw new ArgumentError(`${where(op)}: SQFT always merges through the mask; use 'lora' to densify`);
  };
  return {
    name,
    kind: 'adapter',
    describe,
    paper: provenance.paper,
    differs: provenance.differs,
    schema: loraConfigSchema,
    parseConfig: (config) => parseWith(loraConfigSchema, config, name),
    init(base: Tensor, config: unknown, rng: Random) {
      const c = parseWith(loraConfigSchema, config, name);
      const [out, inp] = floatMatrix(base, where('init'), 'base').shape as [number, number];
      return { variant: name, shape: [out, inp], config: c, params: loraFactors(out, inp, c.r, rng) };
    },
    delta: (state) => delta(state),
    forward(x, base, state) {
      checkState(state, name, where('forward'));
      checkShape(base, state, where('forward'), 'base');
      const y = matmul(x, base, { transB: true });
      const xa = matmul(x, state.params.lora_A!, { transB: true });
      const up = matmul(xa, state.params.lora_B!, { transB: true });
      const s = loraScaling(state.config);
      for (let k = 0; k < y.data.length; k++) y.data[k] = y.data[k]! + s * up.data[k]!;
      return y;
    },
    merge(base, state, opts) {
      checkDensify(opts, 'merge');
      checkState(state, name, where('merge'));
      checkShape(base, state, where('merge'), 'base');
      const w = floatMatrix(base, where('merge'), 'base');
      return addMasked(w, delta(state), mergeMask(w, opts, where('merge')), 1);
    },
    unmerge(merged, state, opts) {
      checkDensify(opts, 'unmerge');
      checkState(state, name, where('unmerge'));
      checkShape(merged, state, where('unmerge'), 'merged');
      const w = floatMatrix(merged, where('unmerge'), 'merged');
      return addMasked(w, delta(state), mergeMask(w, opts, where('unmerge')), -1);
    },
    trainableCount(shape, config) {
      const c = parseWith(loraConfigSchema, config, name);
      return c.r * (shape[0] + shape[1]);
    },
  };
}

export const loraVariant = makeLoRAVariant('lora', 'LoRA: ΔW = scaling · B A (alpha/r, or alpha/√r with rslora)', {
  paper: 'Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models',
  differs: [
    "PEFT's conventions: A is drawn Kaiming-uniform U(±1/√in) as PEFT does, where the paper draws it from a Gaussian",
    "rslora: true is rsLoRA's alpha/√r scaling, not in the paper (off by default)",
  ],
});
export const sqftVariant = makeLoRAVariant('sqft', 'SQFT: LoRA merged through the base mask, W + mask ⊙ ΔW', {
  paper: 'Muñoz et al. 2024, SQFT: Low-cost Model Adaptation in Low-precision Sparse Foundation Models',
  differs: [
    "only the sparsity-preserving merge through the base mask: no quantization of the base and no neural low-rank search over the adapter's rank",
  ],
});
