//! The flat list of shipped shader sources. A kernel's WGSL unit is its shared device files
//! (`shaders/common/*.wgsl`, in dependency order) followed by `shaders/<name>.wgsl`; each unit is
//! plain, valid WGSL, specialized only through `override` constants and uniforms, and validated
//! with naga by the test suite exactly as shipped.

/// Shared device functions, in dependency order.
pub const COMMON: &[(&str, &str)] = &[
    ("rng", include_str!("../shaders/common/rng.wgsl")),
    ("step", include_str!("../shaders/common/step.wgsl")),
    ("quant", include_str!("../shaders/common/quant.wgsl")),
    ("fp8", include_str!("../shaders/common/fp8.wgsl")),
    ("fp4", include_str!("../shaders/common/fp4.wgsl")),
    ("log4", include_str!("../shaders/common/log4.wgsl")),
    ("format", include_str!("../shaders/common/format.wgsl")),
    ("layout", include_str!("../shaders/common/layout.wgsl")),
    ("gemm", include_str!("../shaders/common/gemm.wgsl")),
    ("gemm_tiled", include_str!("../shaders/common/gemm_tiled.wgsl")),
    ("pool", include_str!("../shaders/common/pool.wgsl")),
    ("conv", include_str!("../shaders/common/conv.wgsl")),
    ("unfold", include_str!("../shaders/common/unfold.wgsl")),
    ("pack", include_str!("../shaders/common/pack.wgsl")),
    ("one_pass", include_str!("../shaders/common/one_pass.wgsl")),
    ("stores", include_str!("../shaders/common/stores.wgsl")),
    ("stores_both", include_str!("../shaders/common/stores_both.wgsl")),
    ("samples", include_str!("../shaders/common/samples.wgsl")),
    ("pack_stream", include_str!("../shaders/common/pack_stream.wgsl")),
    ("pack_rows", include_str!("../shaders/common/pack_rows.wgsl")),
    ("unfold_t", include_str!("../shaders/common/unfold_t.wgsl")),
    ("row_groups", include_str!("../shaders/common/row_groups.wgsl")),
    ("pack_t", include_str!("../shaders/common/pack_t.wgsl")),
    ("chunk_sums", include_str!("../shaders/common/chunk_sums.wgsl")),
    ("rows_t", include_str!("../shaders/common/rows_t.wgsl")),
    ("hadamard16", include_str!("../shaders/common/hadamard16.wgsl")),
    ("group_scale", include_str!("../shaders/common/group_scale.wgsl")),
    ("maxima", include_str!("../shaders/common/maxima.wgsl")),
    ("slots", include_str!("../shaders/common/slots.wgsl")),
    ("optim", include_str!("../shaders/common/optim.wgsl")),
    ("int_codes", include_str!("../shaders/common/int_codes.wgsl")),
    ("row_stage", include_str!("../shaders/common/row_stage.wgsl")),
    ("gemm_coop", include_str!("../shaders/common/gemm_coop.wgsl")),
    ("lanes", include_str!("../shaders/common/lanes.wgsl")),
    ("levels", include_str!("../shaders/common/levels.wgsl")),
    ("levels_lanes", include_str!("../shaders/common/levels_lanes.wgsl")),
    ("col2im_tile", include_str!("../shaders/common/col2im_tile.wgsl")),
    ("col2im_w", include_str!("../shaders/common/col2im_w.wgsl")),
    ("teams", include_str!("../shaders/common/teams.wgsl")),
    ("segments", include_str!("../shaders/common/segments.wgsl")),
    ("team_scale", include_str!("../shaders/common/team_scale.wgsl")),
];

/// Dequantize decodes as the quantizers encode, and stores in the elementwise kernels' teams.
const DEQUANT_INCLUDES: &[&str] = &["rng", "step", "quant", "fp8", "fp4", "log4", "format", "layout", "teams"];
/// The multi-tensor optimizers share their slots, and walk them in teams on CPU adapters.
const OPTIM_INCLUDES: &[&str] = &["step", "slots", "teams", "optim"];
/// The quantizers that pack x in its own orientation share their packing.
const QUANT_PACK_INCLUDES: &[&str] =
    &["rng", "step", "quant", "fp8", "fp4", "log4", "format", "layout", "pack", "stores", "samples", "maxima"];
/// The one-pass quantizers also share their masked loads, SMP-stacked stores and group scales.
const QUANT_FUSED_INCLUDES: &[&str] = &[
    "rng",
    "step",
    "quant",
    "fp8",
    "fp4",
    "log4",
    "format",
    "layout",
    "pack",
    "one_pass",
    "stores",
    "samples",
    "pack_rows",
    "row_groups",
    "group_scale",
    "segments",
    "team_scale",
];
/// The fused unfold and quantizer: the one-pass quantizer's units and the convolution's unfold.
const QUANT_UNFOLD_INCLUDES: &[&str] = &[
    "rng",
    "step",
    "quant",
    "fp8",
    "fp4",
    "log4",
    "format",
    "layout",
    "pack",
    "one_pass",
    "stores_both",
    "samples",
    "pack_rows",
    "pack_stream",
    "conv",
    "unfold",
    "unfold_t",
    "segments",
    "team_scale",
];
const QUANT_T_FUSED_INCLUDES: &[&str] = &[
    "rng",
    "step",
    "quant",
    "fp8",
    "fp4",
    "log4",
    "format",
    "layout",
    "pack_t",
    "one_pass",
    "stores",
    "samples",
    "chunk_sums",
    "rows_t",
    "group_scale",
];
/// Both orientations in one launch: the per-thread groups of x (the one-pass quantizer's) and the
/// per-thread rows of xᵀ (the transposing one's), with its own stores (it writes two outputs);
/// for entry main_given, xᵀ's scales from given maxima and x's groups' teams (segments, team_scale).
const QUANT_BOTH_INCLUDES: &[&str] = &[
    "rng",
    "step",
    "quant",
    "fp8",
    "fp4",
    "log4",
    "format",
    "layout",
    "pack",
    "one_pass",
    "stores_both",
    "samples",
    "pack_rows",
    "row_groups",
    "pack_t",
    "chunk_sums",
    "rows_t",
    "maxima",
    "segments",
    "team_scale",
];
/// The rotating transposing quantizer: the one-pass quantizers' masked loads and SMP stores, the
/// row sums it shares with quantize_transpose_fused, and (entry main_both, x's own blocks) the
/// per-thread groups and packing of quantize_fused.
const QUANT_ROTATE_T_INCLUDES: &[&str] = &[
    "rng",
    "step",
    "quant",
    "fp8",
    "fp4",
    "log4",
    "format",
    "layout",
    "pack",
    "one_pass",
    "samples",
    "pack_rows",
    "group_scale",
    "row_groups",
    "chunk_sums",
    "hadamard16",
];
/// The transposing quantizer of an unfolded input: the SMP stores, the stream packer it shares with
/// the fused unfold, and the convolution's geometry.
const QUANT_T_UNFOLD_INCLUDES: &[&str] = &[
    "rng",
    "step",
    "quant",
    "fp8",
    "fp4",
    "log4",
    "format",
    "layout",
    "stores",
    "samples",
    "pack_stream",
    "conv",
    "unfold_t",
    "maxima",
    "segments",
];
/// The transposing quantizers share their packing.
const QUANT_T_INCLUDES: &[&str] =
    &["rng", "step", "quant", "fp8", "fp4", "log4", "format", "layout", "pack_t", "stores", "samples", "maxima"];
const GEMM_INCLUDES: &[&str] = &["quant", "fp8", "gemm"];
/// The GEMMs whose operands become f32 on load share their tiled loops.
const TILED_GEMM_INCLUDES: &[&str] = &["quant", "fp8", "gemm", "gemm_tiled"];

/// A kernel's shader: its name (= file stem), the common files it includes, and its body.
pub struct KernelSource {
    /// `shaders/<name>.wgsl`, `src/kernels/<name>.rs`, `src/reference/<name>.rs`.
    pub name: &'static str,
    /// Names from [`COMMON`], in order.
    pub includes: &'static [&'static str],
    /// The kernel's own file.
    pub body: &'static str,
}

/// Every kernel lowbit ships.
pub const KERNELS: &[KernelSource] = &[
    KernelSource { name: "copy", includes: &["teams"], body: include_str!("../shaders/copy.wgsl") },
    KernelSource { name: "peak", includes: &[], body: include_str!("../shaders/peak.wgsl") },
    KernelSource { name: "peak_coop", includes: &[], body: include_str!("../shaders/peak_coop.wgsl") },
    KernelSource {
        name: "absmax",
        includes: &["quant", "layout", "segments"],
        body: include_str!("../shaders/absmax.wgsl"),
    },
    KernelSource { name: "quantize", includes: QUANT_PACK_INCLUDES, body: include_str!("../shaders/quantize.wgsl") },
    KernelSource {
        name: "quantize_fused",
        includes: QUANT_FUSED_INCLUDES,
        body: include_str!("../shaders/quantize_fused.wgsl"),
    },
    KernelSource {
        name: "quantize_transpose",
        includes: QUANT_T_INCLUDES,
        body: include_str!("../shaders/quantize_transpose.wgsl"),
    },
    KernelSource {
        name: "quantize_transpose_fused",
        includes: QUANT_T_FUSED_INCLUDES,
        body: include_str!("../shaders/quantize_transpose_fused.wgsl"),
    },
    KernelSource {
        name: "quantize_both",
        includes: QUANT_BOTH_INCLUDES,
        body: include_str!("../shaders/quantize_both.wgsl"),
    },
    KernelSource { name: "dequantize", includes: DEQUANT_INCLUDES, body: include_str!("../shaders/dequantize.wgsl") },
    KernelSource { name: "gemm_f32", includes: TILED_GEMM_INCLUDES, body: include_str!("../shaders/gemm_f32.wgsl") },
    KernelSource {
        name: "gemm_f32_lanes",
        includes: &["quant", "fp8", "gemm", "lanes"],
        body: include_str!("../shaders/gemm_f32_lanes.wgsl"),
    },
    KernelSource {
        name: "gemm_f32_col2im",
        includes: &["quant", "fp8", "gemm", "conv", "col2im_tile", "col2im_w"],
        body: include_str!("../shaders/gemm_f32_col2im.wgsl"),
    },
    KernelSource {
        name: "gemm_f32_naive",
        includes: GEMM_INCLUDES,
        body: include_str!("../shaders/gemm_f32_naive.wgsl"),
    },
    KernelSource {
        name: "gemm_int",
        includes: &["quant", "fp8", "gemm", "int_codes"],
        body: include_str!("../shaders/gemm_int.wgsl"),
    },
    KernelSource {
        name: "gemm_int_col2im",
        includes: &["quant", "fp8", "gemm", "int_codes", "conv", "col2im_tile"],
        body: include_str!("../shaders/gemm_int_col2im.wgsl"),
    },
    KernelSource {
        name: "gemm_int_lanes",
        includes: &["quant", "fp8", "gemm", "int_codes", "lanes"],
        body: include_str!("../shaders/gemm_int_lanes.wgsl"),
    },
    KernelSource {
        name: "gemm_int_coop",
        includes: &["quant", "fp8", "gemm", "int_codes", "gemm_coop"],
        body: include_str!("../shaders/gemm_int_coop.wgsl"),
    },
    KernelSource {
        name: "gemm_levels",
        includes: &["quant", "fp8", "gemm", "gemm_tiled", "levels"],
        body: include_str!("../shaders/gemm_levels.wgsl"),
    },
    KernelSource {
        name: "gemm_levels_col2im",
        includes: &["quant", "fp8", "gemm", "conv", "col2im_tile", "col2im_w", "levels", "levels_lanes"],
        body: include_str!("../shaders/gemm_levels_col2im.wgsl"),
    },
    KernelSource {
        name: "gemm_levels_lanes",
        includes: &["quant", "fp8", "gemm", "lanes", "levels", "levels_lanes"],
        body: include_str!("../shaders/gemm_levels_lanes.wgsl"),
    },
    KernelSource { name: "gemm_fp8", includes: TILED_GEMM_INCLUDES, body: include_str!("../shaders/gemm_fp8.wgsl") },
    KernelSource {
        name: "gemm_fp8_coop",
        includes: &["quant", "fp8", "gemm", "gemm_coop"],
        body: include_str!("../shaders/gemm_fp8_coop.wgsl"),
    },
    KernelSource {
        name: "gemm_fp8_col2im",
        includes: &["quant", "fp8", "gemm", "conv", "col2im_tile"],
        body: include_str!("../shaders/gemm_fp8_col2im.wgsl"),
    },
    KernelSource {
        name: "gemm_fp8_lanes",
        includes: &["quant", "fp8", "gemm", "lanes"],
        body: include_str!("../shaders/gemm_fp8_lanes.wgsl"),
    },
    KernelSource {
        name: "hadamard",
        includes: &["rng", "quant", "hadamard16", "chunk_sums"],
        body: include_str!("../shaders/hadamard.wgsl"),
    },
    KernelSource {
        name: "hadamard_quantize_transpose",
        includes: QUANT_ROTATE_T_INCLUDES,
        body: include_str!("../shaders/hadamard_quantize_transpose.wgsl"),
    },
    KernelSource { name: "add", includes: &["teams"], body: include_str!("../shaders/add.wgsl") },
    KernelSource { name: "error_feedback", includes: &[], body: include_str!("../shaders/error_feedback.wgsl") },
    KernelSource { name: "finite", includes: &["step"], body: include_str!("../shaders/finite.wgsl") },
    KernelSource { name: "relu_backward", includes: &["teams"], body: include_str!("../shaders/relu_backward.wgsl") },
    KernelSource { name: "col_sum", includes: &[], body: include_str!("../shaders/col_sum.wgsl") },
    KernelSource { name: "mse", includes: &["step"], body: include_str!("../shaders/mse.wgsl") },
    KernelSource {
        name: "softmax_xent",
        includes: &["step", "row_stage"],
        body: include_str!("../shaders/softmax_xent.wgsl"),
    },
    KernelSource { name: "sgd", includes: OPTIM_INCLUDES, body: include_str!("../shaders/sgd.wgsl") },
    KernelSource { name: "adam", includes: OPTIM_INCLUDES, body: include_str!("../shaders/adam.wgsl") },
    KernelSource { name: "im2col", includes: &["conv", "unfold"], body: include_str!("../shaders/im2col.wgsl") },
    KernelSource {
        name: "im2col_quantize",
        includes: QUANT_UNFOLD_INCLUDES,
        body: include_str!("../shaders/im2col_quantize.wgsl"),
    },
    KernelSource {
        name: "im2col_quantize_transpose",
        includes: QUANT_T_UNFOLD_INCLUDES,
        body: include_str!("../shaders/im2col_quantize_transpose.wgsl"),
    },
    KernelSource { name: "avgpool", includes: &["pool"], body: include_str!("../shaders/avgpool.wgsl") },
    KernelSource {
        name: "tinyscript",
        includes: &["rng", "step", "quant", "layout"],
        body: include_str!("../shaders/tinyscript.wgsl"),
    },
    KernelSource {
        name: "batchnorm",
        includes: &["quant", "segments"],
        body: include_str!("../shaders/batchnorm.wgsl"),
    },
    KernelSource {
        name: "batchnorm_commit",
        includes: &["slots"],
        body: include_str!("../shaders/batchnorm_commit.wgsl"),
    },
    KernelSource { name: "maxpool", includes: &["pool"], body: include_str!("../shaders/maxpool.wgsl") },
    KernelSource { name: "embedding", includes: &[], body: include_str!("../shaders/embedding.wgsl") },
    KernelSource { name: "heads", includes: &[], body: include_str!("../shaders/heads.wgsl") },
    KernelSource { name: "transpose", includes: &[], body: include_str!("../shaders/transpose.wgsl") },
    KernelSource { name: "softmax", includes: &["row_stage"], body: include_str!("../shaders/softmax.wgsl") },
    KernelSource { name: "layernorm", includes: &["row_stage"], body: include_str!("../shaders/layernorm.wgsl") },
    KernelSource { name: "gelu", includes: &["teams"], body: include_str!("../shaders/gelu.wgsl") },
    KernelSource {
        name: "format_check",
        includes: &["rng", "quant", "fp8", "fp4", "log4", "format"],
        body: include_str!("../shaders/format_check.wgsl"),
    },
];

/// Kernels compiled without naga's runtime checks (index clamping of arrays and buffers, and a
/// counter that bounds every loop): the GEMMs and the rate probe, whose inner loops those checks
/// slowed by a quarter (H100: f32 GEMM 2048³ 19.0 → 23.7 TFLOP/s; the 64×64 and 32×32 tiles,
/// whose accumulators the clamped dynamic indices pushed out of registers, ~10×). Each of these
/// shaders states in its header why every index it forms is in range: workgroup and private
/// arrays by construction from the tile constants, buffers by the row/column/K guards on every
/// load and the lengths the launchers check. Integer division checks stay on. Setting
/// `LOWBIT_SHADER_CHECKS=1` compiles these with the checks too (to rule them out when debugging).
pub const UNCHECKED: &[&str] = &["gemm_f32", "gemm_f32_naive", "gemm_fp8", "gemm_levels", "gemm_int", "peak"];

/// Kernels that need an adapter feature beyond lowbit's baseline, with the naga capabilities
/// that validate them: `peak_coop`, `gemm_int_coop` and `gemm_fp8_coop` use cooperative matrices (SPIR-V's
/// `CooperativeMatrixKHR`; no MSL or HLSL translation), f16 and subgroups; the lanes GEMMs (`gemm_f32_lanes`,
/// `gemm_int_lanes`, `gemm_fp8_lanes`, `gemm_levels_lanes`) and the fused input gradients (`gemm_int_col2im`,
/// `gemm_f32_col2im`, `gemm_fp8_col2im`, `gemm_levels_col2im`) use subgroups.
pub const NEEDS_FEATURES: &[&str] = &[
    "peak_coop",
    "gemm_int_coop",
    "gemm_fp8_coop",
    "gemm_f32_lanes",
    "gemm_int_lanes",
    "gemm_fp8_lanes",
    "gemm_levels_lanes",
    "gemm_levels_col2im",
    "gemm_int_col2im",
    "gemm_f32_col2im",
    "gemm_fp8_col2im",
];

/// Kernels compiled without naga's loop counter alone (index clamping stays on): the one-pass
/// quantizers, whose per-element loops the counter (a 64-bit count, compared and branched on,
/// every iteration) slowed on lavapipe, where each loop runs once per 8-lane SIMD piece (2 cores,
/// medians of three alternating runs: `quantize_transpose_fused` with row sums, x of 25,088×400,
/// 52–62 → 47–48 ms; with the plain maximum loop of the same commit, 287112c, the MNIST CNN's
/// int8 step spent 59–63 ms in it instead of 92–106; `im2col_quantize`, which runs
/// `quantize_fused`'s packing, 61.6–68.0 → 57.7–60.5 ms of that step at 72d1c34, three alternating
/// rounds). Each of these shaders states in its header
/// why every loop it runs ends: each steps a counter by a positive amount (or halves it) towards
/// a bound fixed before the loop. `LOWBIT_SHADER_CHECKS=1` puts the counter back, as for
/// [`UNCHECKED`].
pub const LOOPS_UNBOUNDED: &[&str] =
    &["quantize_fused", "quantize_transpose_fused", "quantize_both", "im2col_quantize", "im2col_quantize_transpose"];

/// Whether `LOWBIT_SHADER_CHECKS` asks for every check in every kernel: `1`, `on`, `yes` or
/// `true` (any case) yes; unset, empty, `0`, `off`, `no` or `false` no; anything else an error
/// naming those, which opening a [`crate::Gpu`] reports (so `off` cannot turn the checks on).
pub(crate) fn checks_from_env() -> crate::Result<bool> {
    crate::gpu::env_value("LOWBIT_SHADER_CHECKS", checks_error)?.map_or(Ok(false), |v| parse_checks(&v))
}

/// A `LOWBIT_SHADER_CHECKS` value ([`checks_from_env`]).
fn parse_checks(v: &str) -> crate::Result<bool> {
    match v.trim() {
        "" => Ok(false),
        word => crate::gpu::switch_word(word).ok_or_else(|| checks_error(v)),
    }
}

fn checks_error(v: &str) -> crate::Error {
    crate::Error::InvalidArgument(format!("LOWBIT_SHADER_CHECKS={v}: expected 1 (on, yes, true) or 0 (off, no, false)"))
}

/// Whether the checks are forced ([`checks_from_env`]; a value it refuses, which no open `Gpu`
/// has let through, counts as on: the safe side).
fn checks_forced() -> bool {
    checks_from_env().unwrap_or(true)
}

/// Whether kernel `name` is compiled without naga's runtime checks (see [`UNCHECKED`]).
pub fn runs_unchecked(name: &str) -> bool {
    UNCHECKED.contains(&name) && !checks_forced()
}

/// Whether kernel `name` is compiled without naga's loop counter (see [`UNCHECKED`] and
/// [`LOOPS_UNBOUNDED`]).
pub fn runs_unbounded_loops(name: &str) -> bool {
    (UNCHECKED.contains(&name) || LOOPS_UNBOUNDED.contains(&name)) && !checks_forced()
}

/// The full WGSL unit of kernel `name`, or `None` if there is no such kernel. A kernel's
/// `enable` directives, which WGSL wants before any declaration, go first.
pub fn source(name: &str) -> Option<String> {
    let k = KERNELS.iter().find(|k| k.name == name)?;
    let mut s = String::new();
    for line in k.body.lines().filter(|l| l.starts_with("enable ")) {
        s.push_str(line);
        s.push('\n');
    }
    for inc in k.includes {
        let (_, text) = COMMON.iter().find(|(n, _)| n == inc)?;
        s.push_str(text);
        s.push('\n');
    }
    for line in k.body.lines().filter(|l| !l.starts_with("enable ")) {
        s.push_str(line);
        s.push('\n');
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::parse_checks;

    #[test]
    fn shader_checks_parse() {
        for on in ["1", "on", "YES", " true "] {
            assert!(parse_checks(on).unwrap(), "{on}");
        }
        for off in ["", "0", "Off", "no", "false"] {
            assert!(!parse_checks(off).unwrap(), "{off}");
        }
        for bad in ["2", "enable", "-1"] {
            let err = parse_checks(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("LOWBIT_SHADER_CHECKS={bad}")) && err.contains("0 (off, no, false)"),
                "{err}"
            );
        }
    }
}
