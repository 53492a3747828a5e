//! CPU references: plain scalar Rust, no wgpu, one file per kernel with the kernel's name, index
//! arithmetic mirroring the shader. They are the algorithmic specification each GPU kernel is
//! tested against (bit for bit for integer, packed and stochastic outputs).

pub mod absmax;
pub mod adam;
pub mod add;
pub mod avgpool;
pub mod batchnorm;
pub mod col_sum;
pub mod copy;
pub mod dequantize;
pub mod embedding;
pub mod error_feedback;
pub mod finite;
pub mod format_check;
pub mod gelu;
pub mod gemm_f32;
pub mod gemm_f32_col2im;
pub mod gemm_f32_lanes;
pub mod gemm_f32_naive;
pub mod gemm_fp8;
pub mod gemm_fp8_lanes;
pub mod gemm_int;
pub mod gemm_int_col2im;
pub mod gemm_int_lanes;
pub mod gemm_levels;
pub mod hadamard;
pub mod heads;
pub mod im2col;
pub mod im2col_quantize;
pub mod im2col_quantize_transpose;
pub mod layernorm;
pub mod maxpool;
pub mod mse;
pub mod peak;
pub mod peak_coop;
pub mod quantize;
pub mod quantize_fused;
pub mod quantize_transpose;
pub mod quantize_transpose_fused;
pub mod relu_backward;
pub mod scale;
pub mod sgd;
pub mod softmax;
pub mod softmax_xent;
pub mod tinyscript;
pub mod transpose;
