//! Reference for `shaders/gemm_int_lanes.wgsl`: the same products as gemm_int's (one sample, one
//! scale chunk over K).

pub use super::gemm_int::{gemm_int as gemm_int_lanes, gemm_int_raw as gemm_int_lanes_raw};
