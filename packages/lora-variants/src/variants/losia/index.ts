// The public exports of 'losia': config and core variant. The tfjs form (./tfjs.ts) is listed in
// ../builtins-tfjs.ts and never re-exported here: this file belongs to the core entry.
export { losiaConfigSchema } from './config.js';
export type { LoSiAConfig, LoSiAConfigInput } from './config.js';
export { losiaLocalize, losiaRelocalize, losiaVariant } from './variant.js';
