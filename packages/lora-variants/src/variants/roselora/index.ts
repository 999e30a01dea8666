// The public exports of 'roselora': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { roseloraConfigSchema } from './config.js';
export type { RoseLoRAConfig, RoseLoRAConfigInput } from './config.js';
export { roseloraDensityAt, roseloraMasks, roseloraSelect, roseloraSupport, roseloraVariant } from './variant.js';
