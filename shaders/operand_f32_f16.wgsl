// matmul with a float32 first operand and a float16 second one (src/ops/matmul.ts): a frozen
// weight stored in f16 by Module.half({ frozenOnly: true }), read with half the bytes, against
// f32 activations. Each value is converted to f32 as it is loaded and sums accumulate in f32, so
// the only rounding is the weight's own, done once when it was stored. Needs shader-f16.

enable f16;

alias Operand = f32;
alias Operand4 = vec4<f32>;
alias OperandA = f32;
alias OperandA4 = vec4<f32>;
alias OperandB = f16;
alias OperandB4 = vec4<f16>;
