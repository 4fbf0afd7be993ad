// The `wg.nn` namespace: layers and models, PyTorch-style.
export { Module, parameter, buffer } from './module';
export { Linear, type LinearOptions } from './linear';
export { Conv2d, type Conv2dLayerOptions } from './conv2d';
export { ReLU, GELU, SiLU, Tanh, Sigmoid, MaxPool2d, AvgPool2d, Flatten } from './activations';
export { Embedding } from './embedding';
export { Dropout } from './dropout';
export { LayerNorm, RMSNorm, BatchNorm2d } from './normalization';
export { Sequential } from './sequential';
export { checkpoint } from './checkpoint';
export { lora, LoRA, type LoRAOptions, type LoRAModel } from './lora';
export {
  MultiheadAttention,
  TransformerBlock,
  KVCache,
  type MultiheadAttentionOptions,
  type TransformerBlockOptions,
  type AttentionCall,
} from './attention';
export * as init from './init';
