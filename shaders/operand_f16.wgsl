// Operands stored as float16 (mixed precision, devices with shader-f16; see operand_f32.wgsl):
// half the bytes per load. Each value is converted to f32 as it is loaded, so products are exact
// (11 × 11 significant bits fit in f32's 24) and sums accumulate in f32: the only rounding f16
// adds is that of the operands themselves, relative 2^-11 each.

enable f16;

alias Operand = f16;
alias Operand4 = vec4<f16>;
// matmul's two operands (matmul_layout.wgsl) have this type too; operand_f32_f16.wgsl mixes them.
alias OperandA = f16;
alias OperandA4 = vec4<f16>;
alias OperandB = f16;
alias OperandB4 = vec4<f16>;
