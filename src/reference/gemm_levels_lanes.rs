//! Reference for `shaders/gemm_levels_lanes.wgsl`: the same products as gemm_levels'.

pub use super::gemm_levels::{gemm_levels as gemm_levels_lanes, gemm_levels_coded as gemm_levels_lanes_coded};
