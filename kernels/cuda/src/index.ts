export * from './tensor-core-24.js';
