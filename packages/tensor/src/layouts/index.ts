export * from './types.js';
export * from './packed.js';
export * from './bitmask.js';
export * from './csr.js';
export * from './bsr.js';
export * from './nm.js';
export * from './coo.js';
export * from './generic.js';
