// Loads of the attention operands q, k, v and dO (attention_common.wgsl) four elements at a
// time, for operands whose offsets, strides and Dh are multiples of 4 (src/ops/attention.ts
// checks; attention_load_scalar.wgsl serves the others). On SwiftShader a vec4 load costs about
// what one scalar load does: measured, the forward pass ran 1.6× faster with these.

@group(0) @binding(1) var<storage, read> q: array<Operand4>;  // operand_*.wgsl: f32, or f16
@group(0) @binding(2) var<storage, read> k: array<Operand4>;
@group(0) @binding(3) var<storage, read> v: array<Operand4>;
@group(0) @binding(6) var<storage, read> dout: array<Operand4>; // backward's grad_q and grad_kv

// Chunk c (dimensions 4c … 4c + 3) of the row starting at element `row` (a multiple of 4), as
// f32; zeros for chunks past dh (the register tiles compute every chunk they hold).
fn chunk_q(row: u32, c: u32) -> vec4f { return select(vec4f(0.0), vec4f(q[row / 4u + min(c, p.dh / 4u - 1u)]), 4u * c < p.dh); }
fn chunk_k(row: u32, c: u32) -> vec4f { return select(vec4f(0.0), vec4f(k[row / 4u + min(c, p.dh / 4u - 1u)]), 4u * c < p.dh); }
fn chunk_v(row: u32, c: u32) -> vec4f { return select(vec4f(0.0), vec4f(v[row / 4u + min(c, p.dh / 4u - 1u)]), 4u * c < p.dh); }
fn chunk_dout(row: u32, c: u32) -> vec4f { return select(vec4f(0.0), vec4f(dout[row / 4u + min(c, p.dh / 4u - 1u)]), 4u * c < p.dh); }
