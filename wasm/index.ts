// The CPU backend's kernels: every export is a kernel `name(args, scratch)` (see common.ts).
export { matmul } from './matmul';
export { conv2d, conv2d_grad_input, conv2d_grad_weight, conv2d_reduce_partials, conv2d_grad_bias } from './conv2d';
export { unary, binary, axpy } from './elementwise';
