// @sparse/activation/tfjs: activation sparsity inside a tfjs graph (training and evaluation).
export {};
