//! Reference for `shaders/gemm_int_coop.wgsl`: the same products as gemm_int's (one sample).

pub use super::gemm_int::{gemm_int as gemm_int_coop, gemm_int_raw as gemm_int_coop_raw};
