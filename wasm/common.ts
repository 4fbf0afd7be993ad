// What every kernel shares: reading its argument block, claiming work, and the SIMD multiply-add.
//
// A kernel is exported as `name(args, scratch)`. `args` is the address of its argument block: a
// 16-byte header (word 0: the next unclaimed task, word 1: how many threads run the kernel) then
// the kernel's named 32-bit fields at the offsets of generated/fields.ts (from kernels.json).
// Every thread of the pool calls the same export with the same block and its own `scratch` (a
// private region for packed panels); the threads share the work by claiming task indices from
// word 0 with an atomic add, so a thread that is slowed down (the machine is shared) simply
// claims fewer tasks. A task is a block of the output: no two tasks write the same element.

/** Bytes of private scratch memory each thread brings (packed matmul panels and the like). */
// @ts-ignore: decorator
@inline export const SCRATCH_BYTES: usize = 1 << 20;

// @ts-ignore: decorator
@inline export function u32At(args: usize, offset: usize): u32 {
  return load<u32>(args + offset);
}

// @ts-ignore: decorator
@inline export function i32At(args: usize, offset: usize): i32 {
  return load<i32>(args + offset);
}

// @ts-ignore: decorator
@inline export function f32At(args: usize, offset: usize): f32 {
  return load<f32>(args + offset);
}

/** Element `i` of an array field (shapes, strides). */
// @ts-ignore: decorator
@inline export function u32Of(args: usize, offset: usize, i: i32): u32 {
  return load<u32>(args + offset + (<usize>i << 2));
}

/** The next task of this kernel run (an index from 0 up, shared by all its threads). */
// @ts-ignore: decorator
@inline export function claim(args: usize): i32 {
  return atomic.add<i32>(args, 1);
}

/** a·b + c on four lanes. Fused (one rounding) in the relaxed-SIMD build where the engine fuses. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
