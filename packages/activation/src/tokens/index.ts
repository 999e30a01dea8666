// Token elimination for long inputs: per-token informativeness, the selection that keeps sink and recent
// tokens, and the 'lemo' activation method.
export { attentionReceived, blockChange, deviationFromMean, rowNorms } from './scores.js';
export { keptTokens, selectTokens, type TokenSelectionOptions } from './select.js';
export { lemoConfigSchema, lemoMethod, lemoSelection, type LemoConfig, type LemoConfigInput, type LemoState } from './lemo.js';
