// Loads of the attention operands q, k, v and dO (attention_common.wgsl) one element at a time:
// any layout whose head dimension is contiguous, any Dh. The last chunk of a row whose Dh is not
// a multiple of 4 reads zeros past dh (those elements belong to the next row, or lie past the
// binding's end). attention_load_vec4.wgsl is the faster alternative for aligned operands.

@group(0) @binding(1) var<storage, read> q: array<Operand>;  // operand_*.wgsl: f32, or f16
@group(0) @binding(2) var<storage, read> k: array<Operand>;
@group(0) @binding(3) var<storage, read> v: array<Operand>;
@group(0) @binding(6) var<storage, read> dout: array<Operand>; // backward's grad_q and grad_kv

fn q_at(row: u32, d: u32) -> f32 { return select(0.0, f32(q[row + min(d, p.dh - 1u)]), d < p.dh); }
fn k_at(row: u32, d: u32) -> f32 { return select(0.0, f32(k[row + min(d, p.dh - 1u)]), d < p.dh); }
fn v_at(row: u32, d: u32) -> f32 { return select(0.0, f32(v[row + min(d, p.dh - 1u)]), d < p.dh); }
fn dout_at(row: u32, d: u32) -> f32 { return select(0.0, f32(dout[row + min(d, p.dh - 1u)]), d < p.dh); }

// Chunk c (dimensions 4c … 4c + 3) of the row starting at element `row`, as f32 (zeros past dh:
// the register tiles compute every chunk they hold). Branch-free: with a branch for whole chunks
// the unrolled kernels took 2-3× longer to compile on SwiftShader (30 s for Dh = 33).
fn chunk_q(row: u32, c: u32) -> vec4f { return vec4f(q_at(row, 4u * c), q_at(row, 4u * c + 1u), q_at(row, 4u * c + 2u), q_at(row, 4u * c + 3u)); }
fn chunk_k(row: u32, c: u32) -> vec4f { return vec4f(k_at(row, 4u * c), k_at(row, 4u * c + 1u), k_at(row, 4u * c + 2u), k_at(row, 4u * c + 3u)); }
fn chunk_v(row: u32, c: u32) -> vec4f { return vec4f(v_at(row, 4u * c), v_at(row, 4u * c + 1u), v_at(row, 4u * c + 2u), v_at(row, 4u * c + 3u)); }
fn chunk_dout(row: u32, c: u32) -> vec4f {
  return vec4f(dout_at(row, 4u * c), dout_at(row, 4u * c + 1u), dout_at(row, 4u * c + 2u), dout_at(row, 4u * c + 3u));
}
