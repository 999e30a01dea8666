// @sparse/tensor/tfjs: conversion between Tensor and tf.Tensor, and trying tfjs backends in order
// (the generic part of backend selection; the project's order lives with the native backend).
// The only entry that imports @tensorflow/tfjs-core (an optional peer); the main entry never does.
export { fromTf, fromTfAsync, tfDTypeOf, toTf } from './tfjs/convert.js';
export { tryBackends } from './tfjs/backend.js';
export type { BackendAttempt, BackendCandidate, BackendChoice, TryBackendsOptions } from './tfjs/backend.js';
