// The one backend name of this package's native kernels, in both registries: @sparse/tensor's kernel
// registry (registerCPUKernels) and tfjs's backend registry (@sparse/kernels-cpu/tfjs).

/** Backend name of the native kernels, in the kernel registry and as the tfjs backend. */
export const SPARSE_CPU_BACKEND = 'sparse-cpu';
