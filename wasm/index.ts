// The CPU backend's kernels: every export is a kernel `name(args, scratch)` (see common.ts).
export { matmul } from './matmul';
