//! Reference for `shaders/gemm_fp8_lanes.wgsl`: the same product as gemm_fp8's.

pub use super::gemm_fp8::gemm_fp8 as gemm_fp8_lanes;
