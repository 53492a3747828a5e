// element_loads: for the kernels whose tiled loops (common/gemm_tiled.wgsl) load their operands
// element by element (gemm_f32): WORD_LOADS off, and the loops' word path, which
// they do not take, served by four element loads of the kernel's load_a / load_b.

const WORD_LOADS: bool = false;

fn load_a4(row: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(load_a(row, k), load_a(row, k + 1u), load_a(row, k + 2u), load_a(row, k + 3u));
}

fn load_b4(col: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(load_b(col, k), load_b(col, k + 1u), load_b(col, k + 2u), load_b(col, k + 3u));
}
