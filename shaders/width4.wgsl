// Invocations read four consecutive f32 at once (see width1.wgsl).

alias Vec = vec4<f32>;
const VW = 4u;

// The sum of a Vec's components.
fn total(v: Vec) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}
