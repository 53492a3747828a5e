//! Reference for `shaders/gemm_fp8_coop.wgsl`: gemm_fp8's (the exact product of the dequantized
//! operands), which the kernel meets within `kernels::gemm_fp8_coop::bound`.

pub use super::gemm_fp8::gemm_fp8 as gemm_fp8_coop;
