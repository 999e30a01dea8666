// @sparse/tensor/tfjs: conversion between Tensor and tf.Tensor, and backend selection.
export {};
