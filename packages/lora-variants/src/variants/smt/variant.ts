// SMT (He et al., "Sparse Matrix Tuning", from "Sparse Matrix in Large Language Model Fine-tuning"): split
// W [out, in] into blockSize × blockSize sub-matrices and train only the `blocks` with the largest
// accumulated gradient, as dense blocks. The paper scores blocks by the mean |∂L/∂W| over warm-up steps:
// pass that through `initWithScores` (e.g. `SquaredGradientAccumulator.mean()` or `GradientAccumulator.scores()` of
// @sparse/masks); each block's score is the sum over its entries. Without scores the plain `init` falls
// back to summed |W| (`score: 'magnitude'`) or random blocks — data-free proxies, not the paper's rule.
// Blocks are stored as values [blocks, blockSize, blockSize] plus their sorted block ids (row-major over
// the [out / blockSize, in / blockSize] grid).
import { magnitudeScores, randomScores } from '@sparse/masks';
import { ArgumentError, ShapeError, tensor, type Float32Tensor } from '@sparse/tensor';
import { makeSparseVariant, topIndices, zerosMatrix } from '../helpers/sparse.js';
import { smtConfigSchema, type SMTConfig } from './config.js';

/** Block ids of the `count` blocks with the largest summed score (ties: lower id), sorted. */
export function smtSelectBlocks(scores: Float32Tensor, blockSize: number, count: number): Int32Array {
  const [out, inp] = scores.shape as [number, number];
  if (out % blockSize !== 0 || inp % blockSize !== 0) {
    throw new ShapeError(`smt.init: blockSize ${blockSize} must divide both dimensions of the weight [${out}, ${inp}]`);
  }
  const cols = inp / blockSize;
  const n = (out / blockSize) * cols;
  if (count > n) throw new ArgumentError(`smt.init: blocks ${count} exceeds the ${n} blocks of ${blockSize} × ${blockSize} in [${out}, ${inp}]`);
  const sum = new Float64Array(n);
  for (let i = 0; i < out; i++) for (let j = 0; j < inp; j++) sum[Math.floor(i / blockSize) * cols + Math.floor(j / blockSize)]! += scores.data[i * inp + j]!;
  return topIndices(sum, count);
}

/** Flat positions in W of every block value, in the order of the values tensor [blocks, bs, bs]. */
export function smtPositions(blockIds: Int32Array, blockSize: number, inp: number): Int32Array {
  const cols = inp / blockSize;
  const pos = new Int32Array(blockIds.length * blockSize * blockSize);
  let q = 0;
  for (const b of blockIds) {
    const [r0, c0] = [Math.floor(b / cols) * blockSize, (b % cols) * blockSize];
    for (let p = 0; p < blockSize; p++) for (let t = 0; t < blockSize; t++) pos[q++] = (r0 + p) * inp + c0 + t;
  }
  return pos;
}

export const smtVariant = makeSparseVariant<SMTConfig>({
  name: 'smt',
  // SMT: the blocks with the largest accumulated |gradient|
  supportScores: { criteria: ['gradient', 'fisher', 'sensitivity', 'magnitude'] },
  describe: 'SMT: train the blockSize × blockSize sub-matrices with the largest accumulated gradient (dense blocks)',
  paper: 'He et al. 2024, Sparse Matrix in Large Language Model Fine-tuning (SMT)',
  differs: [
    'without scores, init falls back to summed |W| or random blocks, data-free proxies; the paper\'s mean |∂L/∂W| over warm-up steps comes through initWithScores',
  ],
  schema: smtConfigSchema,
  create(base, c, rng, scores) {
    const s = scores ?? (c.score === 'magnitude' ? magnitudeScores(base) : randomScores(base.shape, rng));
    const blocks = smtSelectBlocks(s, c.blockSize, c.blocks);
    return { params: { smt_blocks: tensor(new Float32Array(c.blocks * c.blockSize * c.blockSize), [c.blocks, c.blockSize, c.blockSize]) }, indices: { blocks } };
  },
  delta(state) {
    const [out, inp] = state.shape;
    const d = zerosMatrix(out, inp);
    const pos = smtPositions(state.indices.blocks!, state.config.blockSize, inp);
    const v = state.params.smt_blocks!.data;
    for (let q = 0; q < pos.length; q++) d.data[pos[q]!] = v[q]!;
    return d;
  },
  addForward(x, state, y) {
    // Block by block: y[:, rows of b] += x[:, cols of b] · V_bᵀ.
    const [out, inp] = state.shape;
    const bs = state.config.blockSize;
    const cols = inp / bs;
    const n = x.shape[0]!;
    const v = state.params.smt_blocks!.data;
    state.indices.blocks!.forEach((b, q) => {
      const [r0, c0] = [Math.floor(b / cols) * bs, (b % cols) * bs];
      const off = q * bs * bs;
      for (let a = 0; a < n; a++) {
        for (let p = 0; p < bs; p++) {
          let s = 0;
          for (let t = 0; t < bs; t++) s += x.data[a * inp + c0 + t]! * v[off + p * bs + t]!;
          y.data[a * out + r0 + p] = y.data[a * out + r0 + p]! + s;
        }
      }
    });
  },
  count: (_shape, c) => c.blocks * c.blockSize * c.blockSize,
});
