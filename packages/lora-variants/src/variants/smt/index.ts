// The public exports of 'smt': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { smtConfigSchema } from './config.js';
export type { SMTConfig, SMTConfigInput } from './config.js';
export { smtPositions, smtSelectBlocks, smtVariant } from './variant.js';
