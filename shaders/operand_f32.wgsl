// The element type of the operands a matmul or conv2d kernel reads (prepended to matmul*.wgsl and
// conv2d*.wgsl): float32 here; operand_f16.wgsl for mixed precision. Kernels convert each value
// to f32 as they load it (f32(x), vec4f(v): no-ops for f32) and accumulate in f32.

alias Operand = f32;
alias Operand4 = vec4<f32>;
// matmul's two operands (matmul_layout.wgsl) have this type too; operand_f32_f16.wgsl mixes them.
alias OperandA = f32;
alias OperandA4 = vec4<f32>;
alias OperandB = f32;
alias OperandB4 = vec4<f32>;
