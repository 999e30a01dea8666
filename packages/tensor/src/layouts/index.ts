export * from './types.js';
export * from './packed.js';
