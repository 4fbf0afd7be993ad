// The register tile of the conv2d kernels, prepended to each kernel module (after a
// conv2d_share_*.wgsl): 16 channels × 8 pixels (or weight columns) per invocation, in eight mat4x4f
// accumulators. Matrices a{2i} and a{2i+1} hold the four channels of column i of the shared
// operand (quarter share_lane ^ i), for the first and the last four pixels; column j of a matrix
// is pixel j. Passed by value, the tile stays in registers (measured on SwiftShader: as fast as
// eight separate variables).

struct Tile {
  a0: mat4x4f, a1: mat4x4f, a2: mat4x4f, a3: mat4x4f,
  a4: mat4x4f, a5: mat4x4f, a6: mat4x4f, a7: mat4x4f,
}

// 4 channels w × 4 pixels v.
fn outer(w: vec4f, v: vec4f) -> mat4x4f {
  return mat4x4f(w * v.x, w * v.y, w * v.z, w * v.w);
}

// One reduction step: 16 channel values s (column i = 4 channels, as share() returns them) times
// the values of the first four pixels va and of the last four vb.
fn accumulate(t: Tile, s: mat4x4f, va: vec4f, vb: vec4f) -> Tile {
  return Tile(t.a0 + outer(s[0], va), t.a1 + outer(s[0], vb), t.a2 + outer(s[1], va), t.a3 + outer(s[1], vb),
              t.a4 + outer(s[2], va), t.a5 + outer(s[2], vb), t.a6 + outer(s[3], va), t.a7 + outer(s[3], vb));
}
