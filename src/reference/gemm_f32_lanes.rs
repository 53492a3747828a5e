//! Reference for `shaders/gemm_f32_lanes.wgsl`: the same product as the tiled kernel.

pub use super::gemm_f32::gemm_f32 as gemm_f32_lanes;
