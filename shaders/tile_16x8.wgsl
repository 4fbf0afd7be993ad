// The register tile of the conv2d kernels and matmul_shared, prepended to each kernel module (after a
// share_*.wgsl): 16 channels × 8 pixels (or weight columns) per invocation, in eight mat4x4f
// accumulators. Matrices a{2i} and a{2i+1} hold the four channels of column i of the shared
// operand (quarter share_lane ^ i), for the first and the last four pixels; column j of a matrix
// is pixel j. Passed by value, the tile stays in registers (measured on SwiftShader: as fast as
// eight separate variables).

struct Tile {
  a0: mat4x4f, a1: mat4x4f, a2: mat4x4f, a3: mat4x4f,
  a4: mat4x4f, a5: mat4x4f, a6: mat4x4f, a7: mat4x4f,
}

// a + w ⊗ v: 4 channels w times 4 pixels v added to a, with fma (measured 6-20% faster on
// SwiftShader than a separate multiply and add).
fn add_outer(a: mat4x4f, w: vec4f, v: vec4f) -> mat4x4f {
  return mat4x4f(fma(w, vec4f(v.x), a[0]), fma(w, vec4f(v.y), a[1]), fma(w, vec4f(v.z), a[2]), fma(w, vec4f(v.w), a[3]));
}

// One reduction step: 16 channel values s (column i = 4 channels, as share() returns them) times
// the values of the first four pixels va and of the last four vb.
fn accumulate(t: Tile, s: mat4x4f, va: vec4f, vb: vec4f) -> Tile {
  return Tile(add_outer(t.a0, s[0], va), add_outer(t.a1, s[0], vb), add_outer(t.a2, s[1], va), add_outer(t.a3, s[1], vb),
              add_outer(t.a4, s[2], va), add_outer(t.a5, s[2], vb), add_outer(t.a6, s[3], va), add_outer(t.a7, s[3], vb));
}
