// @sparse/tensor/tfjs: conversion between Tensor and tf.Tensor, and backend selection.
// The only entry that imports @tensorflow/tfjs-core (an optional peer); the main entry never does.
export { fromTf, fromTfAsync, tfDTypeOf, toTf } from './tfjs/convert.js';
export { DEFAULT_BACKEND_ORDER, selectBackend } from './tfjs/backend.js';
export type { BackendAttempt, BackendChoice, SelectBackendOptions } from './tfjs/backend.js';
