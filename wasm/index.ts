// The CPU backend's kernels: every export is a kernel `name(args, scratch)` (see common.ts).
export { matmul } from './matmul';
export { conv2d, conv2d_grad_input, conv2d_grad_weight, conv2d_reduce_partials, conv2d_grad_bias } from './conv2d';
export { unary, binary, axpy } from './elementwise';
export { reduce, argmax, scatter } from './reduce';
export { softmax_forward, softmax_backward } from './softmax';
export { cross_entropy_forward, cross_entropy_backward } from './cross_entropy';
export { max_pool_forward, avg_pool_forward, max_pool_backward, max_pool_backward_tiled, avg_pool_backward } from './pool';
export { sgd, sgd_momentum, adam } from './optim';
export { fill, copy } from './copy';
