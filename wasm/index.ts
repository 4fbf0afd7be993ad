// The CPU backend's kernels: every export is a kernel `name(args, scratch)` (see common.ts), run by
// src/runtime/wasm/pool.ts on one or more threads over one shared memory. Its named arguments are
// listed in src/runtime/wasm/kernels.json: the Params fields and override constants of the WGSL
// kernel it mirrors, and its bindings as byte addresses. What differs from the WGSL:
//
//   wasm kernel                     WGSL (shaders/)                    differences
//   matmul                          matmul*.wgsl: every family          no workgroup fields (wgs_m, wgs_n, workgroups)
//   conv2d                          conv2d.wgsl conv2d (+ pack_weight)  reads the weight through w_offset and four
//                                                                       strides (no packing pass); no o_pad, groups
//   conv2d_grad_input               conv2d_grad_input.wgsl              all stride phases in one run (no phase_*,
//                                                                       rows, cols); weight read as for conv2d
//   conv2d_grad_weight              grad_weight                         splits from rows_per_split (no groups)
//   conv2d_reduce_partials, conv2d_grad_bias   reduce_partials, grad_bias
//   unary, binary, axpy             elementwise.wgsl                    no CONTIG/PERIODIC/RANK: found from the strides
//   reduce, argmax, scatter         reduce.wgsl                         no blocks/TX/LANES_FAST
//   softmax_forward/backward        softmax.wgsl forward/backward       no blocks/TX/LANES_FAST
//   cross_entropy_forward/backward  cross_entropy.wgsl                  no groups/TX
//   max_pool_forward, avg_pool_forward, max_pool_backward, max_pool_backward_tiled, avg_pool_backward
//                                   pool.wgsl (max_forward, …)
//   sgd, sgd_momentum, adam         optim.wgsl
//   fill, copy                      copy.wgsl
//
// Not mirrored yet: cast.wgsl (f16) and grad_stats.wgsl (gradient norms for clipping).
export { matmul } from './matmul';
export { conv2d, conv2d_grad_input, conv2d_grad_weight, conv2d_reduce_partials, conv2d_grad_bias } from './conv2d';
export { unary, binary, axpy } from './elementwise';
export { reduce, argmax, scatter } from './reduce';
export { softmax_forward, softmax_backward } from './softmax';
export { cross_entropy_forward, cross_entropy_backward } from './cross_entropy';
export { max_pool_forward, avg_pool_forward, max_pool_backward, max_pool_backward_tiled, avg_pool_backward } from './pool';
export { sgd, sgd_momentum, adam } from './optim';
export { fill, copy } from './copy';
