// How many consecutive f32 a row kernel's invocation reads at once (prepended to norm.wgsl):
// one here; width4.wgsl reads vec4s (rows whose length and offsets are multiples of 4: a quarter
// of the load instructions and of the loop trips). Kernels are written over `Vec` and `VW`.

alias Vec = f32;
const VW = 1u;

// The sum of a Vec's components.
fn total(v: Vec) -> f32 {
  return v;
}
