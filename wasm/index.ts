// The CPU backend's kernels: every export is a kernel `name(args, scratch)` (see common.ts), run by
// src/runtime/wasm/pool.ts on one or more threads over one shared memory as
// pool.run(name, { bind, params, constants }) — the names launch() gives the WGSL twin on the GPU
// path: its defineKernel bindings (here byte addresses in the wasm memory, each view's element
// offset in the params' <binding>_offset), the fields of its WGSL struct Params and its override
// constants (src/runtime/wasm/kernels.json lists what each kernel reads). What differs:
//
//   wasm kernel                     WGSL (shaders/)                    differences
//   matmul                          matmul*.wgsl: every family          no workgroup fields (wgs_m, wgs_n, workgroups)
//   conv2d                          conv2d.wgsl conv2d (+ pack_weight)  binds the weight itself as `w` (pack_weight's
//                                                                       input) with w_offset and four strides
//                                                                       w_stride_o/c/kh/kw: no packing pass, no wp
//   conv2d_grad_input               conv2d_grad_input.wgsl              all stride phases in one run (no phase_*,
//                                                                       rows, cols, c_pad); weight bound as for conv2d
//   conv2d_grad_weight              grad_weight                         splits from rows_per_split (no groups)
//   conv2d_reduce_partials, conv2d_grad_bias   reduce_partials, grad_bias
//   unary, binary, axpy             elementwise.wgsl                    the same (no WG)
//   reduce, argmax, scatter         reduce.wgsl                         no blocks/TX/LANES_FAST
//   softmax_forward/backward        softmax.wgsl forward/backward       no blocks/TX/LANES_FAST
//   cross_entropy_forward/backward  cross_entropy.wgsl                  no groups/TX
//   max_pool_forward, avg_pool_forward, max_pool_backward, max_pool_backward_tiled, avg_pool_backward
//                                   pool.wgsl (max_forward, …)
//   sgd, sgd_momentum, adam         optim.wgsl
//   fill, copy                      copy.wgsl
//   sum_squares, unscale_check, grad_total, clip_scale
//                                   grad_stats.wgsl (total → grad_total)  chunks of WG·ITEMS elements as its workgroups
//
// Not mirrored: cast.wgsl (f16: the CPU backend keeps float32).
export { matmul } from './matmul';
export { conv2d, conv2d_grad_input, conv2d_grad_weight, conv2d_reduce_partials, conv2d_grad_bias } from './conv2d';
export { unary, binary, where, axpy } from './elementwise';
export { reduce, argmax, scatter } from './reduce';
export { softmax_forward, softmax_backward } from './softmax';
export { cross_entropy_forward, cross_entropy_backward } from './cross_entropy';
export { max_pool_forward, avg_pool_forward, max_pool_backward, max_pool_backward_tiled, avg_pool_backward } from './pool';
export { sgd, sgd_momentum, adam } from './optim';
export { norm_forward, norm_backward, norm_columns } from './norm';
export { gather, gather_keys } from './gather';
export { sort_local, sort_global } from './sort_pairs';
export { segment_chunks, segment_spans } from './segment_sum';
export { attention_forward, attention_row_stats, attention_grad_q, attention_grad_kv, attention_grad_kv_packed } from './attention';
export { fill, copy } from './copy';
export { sum_squares, unscale_check, grad_total, clip_scale } from './grad_stats';
