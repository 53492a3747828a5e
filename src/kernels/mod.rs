//! Launchers: one struct per kernel, built once from a [`Gpu`] (pipelines and explicit layouts),
//! whose `encode` records work into the caller's encoder and never submits.

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
pub mod gemm;
pub mod gemm_f32;
pub mod gemm_f32_lanes;
pub mod gemm_f32_naive;
pub mod gemm_fp8;
pub mod gemm_int;
pub mod gemm_levels;
pub mod hadamard;
pub mod heads;
pub mod im2col;
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

use crate::scheme::{QuantLayout, Rounding};
use crate::{shaders, Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// Threads per workgroup of every lowbit kernel.
pub(crate) const WG: u32 = 256;
/// Row lanes per column in the two-level column reductions (`col_sum`, `batchnorm`).
pub(crate) const REDUCE_LANES: usize = 8;
/// Columns per workgroup in those reductions.
pub(crate) const REDUCE_COLS: usize = 32;

/// How the two-level column reductions cut `rows`: `(chunk_rows, chunks)`. At least 64 rows per
/// chunk (a multiple of the lanes), at most 256 chunks, so the second level stays short.
pub(crate) fn reduce_chunks(rows: usize) -> (usize, usize) {
    let chunk_rows = rows.div_ceil(256).max(64).next_multiple_of(REDUCE_LANES);
    (chunk_rows, rows.div_ceil(chunk_rows).max(1))
}

/// Workgroups per dispatch dimension (WebGPU's guaranteed minimum of the limit).
pub(crate) const MAX_DIM: u32 = 65535;

/// Uniform block of the quantizer family, mirrored field for field by `QuantParams` in
/// `shaders/common/layout.wgsl` (whose header documents the fields).
#[allow(missing_docs)]
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, Pod, Zeroable)]
pub(crate) struct QuantParams {
    pub rows: u32,
    pub cols: u32,
    pub words_per_row: u32,
    pub per_word: u32,
    pub row_mul: u32,
    pub block_div: u32,
    pub seg: u32,
    pub tiles_per_row: u32,
    pub total_tiles: u32,
    /// Stochastic draws use `rng::key(seed, stream + StepState::stream_base)`.
    pub seed: u32,
    pub stochastic: u32,
    pub transposed: u32,
    pub n_groups: u32,
    /// Kernel-specific (absmax's transposed entry: chunk length and count).
    pub aux: [u32; 2],
    pub stream: u32,
    /// The group maxima have one more slot, `amax[n_groups]`, for the tensor's maximum (NVFP4's
    /// tensor scale): absmax reduces into it and scale reads it.
    pub tensor_slot: u32,
    /// The one-pass quantizers read `x[i]` as 0 unless `mask[i] > 0` (ReLU's backward).
    pub masked: u32,
    /// The one-pass quantizers write this many stochastic samples, stacked (SMP; 1 = one).
    pub samples: u32,
    /// The transposing quantizers: 0, or x is a stack of `[cols, batch_rows]` matrices whose
    /// transposes are L's rows in blocks of `batch_rows`.
    pub batch_rows: u32,
}
const _: () = assert!(std::mem::size_of::<QuantParams>() == 80);

impl QuantParams {
    /// Params for `layout`, tiled as a row-major word grid (256 words of one row per workgroup).
    pub fn row_tiles(l: &QuantLayout, rounding: Rounding) -> Self {
        let (seed, stream, stochastic) = rounding.seed_stream();
        let tiles_per_row = l.words_per_row.div_ceil(WG);
        QuantParams {
            rows: l.rows,
            cols: l.cols,
            words_per_row: l.words_per_row,
            per_word: l.per_word(),
            row_mul: l.row_mul,
            block_div: l.block_div,
            seg: l.seg(),
            tiles_per_row,
            total_tiles: tiles_per_row * l.rows,
            seed,
            stochastic: stochastic as u32,
            transposed: 0,
            n_groups: l.n_groups,
            aux: [0; 2],
            stream,
            tensor_slot: l.format.needs_tensor_amax() as u32,
            masked: 0,
            samples: 1,
            batch_rows: 0,
        }
    }
}

/// Splits `n` workgroups over a 2-D grid within the per-dimension limit; shaders flatten
/// `wg.x + wg.y * num_workgroups.x` and guard the tail.
pub(crate) fn grid(n: u32) -> Result<(u32, u32)> {
    if n == 0 {
        return Ok((0, 0));
    }
    let x = n.min(MAX_DIM);
    let y = n.div_ceil(x);
    if y > MAX_DIM {
        return Err(Error::InvalidArgument(format!("{n} workgroups exceed one dispatch ({MAX_DIM}^2)")));
    }
    Ok((x, y))
}

/// What a binding is.
#[derive(Copy, Clone)]
pub(crate) enum Slot {
    /// A uniform block.
    Uniform,
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer.
    Write,
}

/// A bind group layout of `slots` (binding i = `slots[i]`) and its pipeline layout.
pub(crate) fn layouts(gpu: &Gpu, name: &str, slots: &[Slot]) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
    let entries: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match s {
                    Slot::Uniform => wgpu::BufferBindingType::Uniform,
                    Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Slot::Write => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let bgl =
        gpu.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(name), entries: &entries });
    let pl = gpu.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&bgl)],
        immediate_size: 0,
    });
    (bgl, pl)
}

/// Builds kernel `name`'s pipeline for `entry` with override constants.
pub(crate) fn pipeline(
    gpu: &Gpu,
    name: &str,
    entry: &str,
    layout: &wgpu::PipelineLayout,
    constants: &[(&str, f64)],
) -> Result<wgpu::ComputePipeline> {
    let src =
        shaders::source(name).ok_or_else(|| Error::Shader { name: name.into(), message: "no such shader".into() })?;
    if !shaders::runs_unchecked(name) {
        return gpu.compute_pipeline(name, &src, entry, layout, constants);
    }
    let mut checks = wgpu::ShaderRuntimeChecks::checked();
    checks.bounds_checks = false;
    checks.force_loop_bounding = false;
    // SAFETY: the kernels in `shaders::UNCHECKED` keep every index in range and every loop finite
    // (each shader's header says why); the other checks stay on.
    unsafe { gpu.compute_pipeline_with(name, &src, entry, layout, constants, checks) }
}

/// A uniform buffer holding `value`.
pub(crate) fn uniform<T: Pod>(gpu: &Gpu, name: &str, value: &T) -> wgpu::Buffer {
    gpu.create_buffer_init(name, bytemuck::bytes_of(value), wgpu::BufferUsages::UNIFORM)
}

/// Records a dispatch of `workgroups` (flattened onto a 2-D grid) into `rec`, with bind group 0
/// binding `buffers` in `layout`'s binding order.
pub(crate) fn dispatch(
    gpu: &Gpu,
    rec: &mut impl crate::Record,
    name: &str,
    pipeline: &wgpu::ComputePipeline,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
    workgroups: u32,
) -> Result<()> {
    let (x, y) = grid(workgroups)?;
    if x == 0 {
        return Ok(());
    }
    rec.dispatch(gpu, &crate::record::Dispatch { name, pipeline, layout, buffers, x, y });
    Ok(())
}

/// Fails unless `rounding` is stochastic: what a launch writing SMP's stacked samples needs (with
/// nearest rounding every sample would be the same).
pub(crate) fn check_samples_rounding(op: &str, rounding: crate::scheme::Rounding) -> Result<()> {
    match rounding {
        crate::scheme::Rounding::Stochastic { .. } => Ok(()),
        _ => Err(Error::InvalidArgument(format!(
            "{op}: SMP samples need stochastic rounding (nearest gives identical samples)"
        ))),
    }
}

/// Fails unless `got == want` elements.
pub(crate) fn check_len(op: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::Shape { op, detail: format!("{what} has {got} elements, expected {want}") });
    }
    Ok(())
}

/// How many blocks of `rows` values a ring output of `len` values holds (at least one, whole).
pub(crate) fn ring_blocks(op: &'static str, what: &str, len: usize, rows: usize) -> Result<usize> {
    if rows == 0 || len == 0 || !len.is_multiple_of(rows) || len / rows > u32::MAX as usize {
        return Err(Error::Shape {
            op,
            detail: format!("{what} has {len} elements: not a whole number of {rows}-row blocks"),
        });
    }
    Ok(len / rows)
}

/// The `FORMAT` override constant.
pub(crate) fn format_constant(f: crate::format::Format) -> [(&'static str, f64); 1] {
    [("FORMAT", f.id() as f64)]
}
