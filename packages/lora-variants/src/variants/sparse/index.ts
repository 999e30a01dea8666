// Sparse + low-rank adapters and sparsity-preserving adapters beyond SPP/SQFT (one file per method
// in this folder). Each variant is listed here once it works; the registry adds the list to its built-ins.
// The named exports below are this folder's public API (variants with `initWithScores`, config schemas,
// selection helpers); the package index re-exports them.
import type { AdapterVariant } from '../types.js';
import { dseeVariant } from './dsee.js';
import { losiaVariant } from './losia.js';
import { mosaVariant } from './mosa.js';
import { pstVariant } from './pst.js';
import { lorsVariant } from './lors.js';
import { roseloraVariant } from './roselora.js';
import { rosaVariant } from './rosa.js';
import { s2ftVariant } from './s2ft.js';
import { saraVariant } from './sara.js';
import { smtVariant } from './smt.js';
import { snellVariant } from './snell.js';
import { sparseAdapterVariant } from './sparse-adapter.js';

export const sparseVariants: readonly AdapterVariant<never>[] = [
  rosaVariant,
  dseeVariant,
  lorsVariant,
  roseloraVariant,
  saraVariant,
  s2ftVariant,
  smtVariant,
  snellVariant,
  sparseAdapterVariant,
  losiaVariant,
  mosaVariant,
  pstVariant,
].map((v) => v as unknown as AdapterVariant<never>);

export type { IndexedAdapterState, ScoredAdapterVariant } from './shared.js';
export { rosaConfigSchema, rosaVariant, type RosaConfig, type RosaConfigInput } from './rosa.js';
export { dseeConfigSchema, dseeResidualScores, dseeVariant, type DseeConfig, type DseeConfigInput } from './dsee.js';
export { lorsConfigSchema, lorsVariant, type LorsConfig, type LorsConfigInput } from './lors.js';
export { roseloraConfigSchema, roseloraMasks, roseloraVariant, type RoseloraConfig, type RoseloraConfigInput } from './roselora.js';
export { nuclearNorm, saraConfigSchema, saraVariant, type SaraConfig, type SaraConfigInput } from './sara.js';
export { s2ftConfigSchema, s2ftPermutation, s2ftVariant, type S2ftConfig, type S2ftConfigInput } from './s2ft.js';
export { smtConfigSchema, smtPositions, smtSelectBlocks, smtVariant, type SmtConfig, type SmtConfigInput } from './smt.js';
export { snellConfigSchema, snellKernel, snellMask, snellVariant, type SnellConfig, type SnellConfigInput } from './snell.js';
export { sparseAdapterConfigSchema, sparseAdapterFactors, sparseAdapterVariant, type SparseAdapterConfig, type SparseAdapterConfigInput } from './sparse-adapter.js';
export { losiaConfigSchema, losiaLocalize, losiaRelocalize, losiaVariant, type LosiaConfig, type LosiaConfigInput } from './losia.js';
export { mosaConfigSchema, mosaModuleDelta, mosaModules, mosaPartition, mosaVariant, type MosaConfig, type MosaConfigInput } from './mosa.js';
export { PST_FROZEN, pstConfigSchema, pstKeepMask, pstMask, pstScores, pstSparsityAt, pstVariant, type PstConfig, type PstConfigInput } from './pst.js';
