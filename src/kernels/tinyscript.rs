//! `tinyscript`: TinyScript's non-uniform quantizer on the GPU ([`crate::tinyscript`] is the
//! spec, the Weibull fit and the level search): the moments of |x| for the fit, per-row
//! quantization onto a [`LevelTable`] with stochastic or nearest rounding (a workgroup per row;
//! on a CPU adapter's layouts a thread per row, no barriers, reading x as vec4s where its shape
//! allows, or for a transposed x's few long rows a workgroup per four rows; the same codes and
//! scales), and dequantization.
//! Bindings: 0 params, 1 x, 2 codes, 3 scales, 4 levels, 5 out. Reference:
//! [`crate::reference::tinyscript`].

use super::absmax::Absmax;
use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::format::Format;
use crate::scheme::{Granularity, QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::tinyscript::{levels_for_rows, LevelTable, Weibull};
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Default, Pod, Zeroable)]
struct TsParams {
    rows: u32,
    cols: u32,
    words_per_row: u32,
    bits: u32,
    n_levels: u32,
    seed: u32,
    stochastic: u32,
    n: u32,
    transposed: u32,
    signed: u32,
    stream: u32,
    /// 1: quantize x where the mask (binding 7) is > 0, 0 elsewhere.
    masked: u32,
}

/// Elements per workgroup in the moments pass.
pub const MOMENTS_CHUNK: usize = 4096;

/// `(Σ|x|, Σx², absmax)` of a tensor, as the moments pass returns them.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Moments {
    /// Σ|x| over finite normal values.
    pub sum_abs: f32,
    /// Σx² over the same.
    pub sum_sq: f32,
    /// max |x| over the same.
    pub amax: f32,
}

/// A tensor quantized by TinyScript: codes `[rows, words_per_row]`, one scale per row, and the
/// level table it was quantized with.
pub struct TinyScriptTensor {
    /// Packed codes.
    pub codes: GpuBuffer<u32>,
    /// Per-row scales (the row's absmax).
    pub scales: GpuBuffer<f32>,
    /// The levels, on the GPU.
    pub levels: GpuBuffer<u32>,
    /// The levels, on the host.
    pub table: LevelTable,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

/// Threads per workgroup of entry `quantize_row_thread` (the shader's `THREAD_WG`).
const THREAD_WG: usize = 64;
/// Threads per workgroup of entry `quantize_quad_t` (the shader's `QUAD_WG`).
const QUAD_WG: usize = 16;
/// On a CPU adapter's layouts, tensors of at most this many values take the thread entries
/// however few their rows: a workgroup per row spends short rows' time in its barriers. On
/// llvmpipe (`kernel_report --formats tinyscript --elements E --cols C`, workgroups against
/// threads; see the README) 10 × 128 went 0.04–0.05 → 0.14–0.19 GB/s and 32 × 1,024 0.30–0.34 →
/// 0.80–0.97; at 16 × 16,384 the two were level, and at 16 × 65,536 the workgroups were the faster.
const THREADS_BELOW: usize = 1 << 18;

/// The TinyScript kernels.
pub struct TinyScript {
    bgl: wgpu::BindGroupLayout,
    partial: wgpu::ComputePipeline,
    finish: wgpu::ComputePipeline,
    quantize: wgpu::ComputePipeline,
    /// On CPU adapters' layouts, the entries without workgroup memory or barriers, for tensors
    /// of at least 2·`THREAD_WG` = 128 rows or at most `THREADS_BELOW` values (a larger tensor's
    /// few long rows, a gradient's columns, would leave a core idle: they keep a workgroup each,
    /// or transposed, four rows a workgroup), and that workgroup entry for four rows.
    threads: Option<ThreadEntries>,
    dequantize: wgpu::ComputePipeline,
    /// Stand-ins for the bindings an entry point does not use (one per binding: a buffer may
    /// not be bound read-only and writable in one dispatch).
    dummies: Stand,
    absmax: Absmax,
}

/// A CPU adapter's quantize entries, each with the same codes and scales as `quantize_row`'s
/// workgroup per row. On llvmpipe every load runs lane by lane, so the vec4 entries load a
/// quarter as often.
struct ThreadEntries {
    /// `quantize_row_thread`: a thread per row.
    row: wgpu::ComputePipeline,
    /// `quantize_row_thread_v4`: a thread per row reading x (and the mask) as vec4s, for x in its
    /// own orientation with a multiple of 4 columns.
    row_v4: wgpu::ComputePipeline,
    /// `quantize_quad_t`: for transposed x (stored `[cols, rows]`) with a multiple of 4 rows, a
    /// thread per four rows, reading a column's four values as one vec4.
    quad_t: wgpu::ComputePipeline,
    /// `quantize_quad_team_t`: where the threads are not taken (few long rows), for transposed x
    /// with a multiple of 4 rows (at least 8), a workgroup per four rows, reading vec4s as
    /// `quad_t` does.
    quad_team_t: wgpu::ComputePipeline,
}

struct Stand(GpuBuffer<f32>, GpuBuffer<u32>, GpuBuffer<f32>, GpuBuffer<u32>, GpuBuffer<f32>);

impl TinyScript {
    /// Builds the pipelines: moments, quantize, dequantize, and on a CPU adapter's layouts the
    /// thread entries.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let slots =
            [Slot::Uniform, Slot::Read, Slot::Write, Slot::Write, Slot::Read, Slot::Write, Slot::Uniform, Slot::Read];
        let (bgl, pl) = layouts(gpu, "tinyscript", &slots);
        let p = |e| pipeline(gpu, "tinyscript", e, &pl, &[]);
        Ok(TinyScript {
            partial: p("moments_partial")?,
            finish: p("moments_finish")?,
            quantize: p("quantize_row")?,
            threads: gpu
                .cpu_layouts()
                .then(|| -> Result<ThreadEntries> {
                    Ok(ThreadEntries {
                        row: p("quantize_row_thread")?,
                        row_v4: p("quantize_row_thread_v4")?,
                        quad_t: p("quantize_quad_t")?,
                        quad_team_t: p("quantize_quad_team_t")?,
                    })
                })
                .transpose()?,
            dequantize: p("dequantize")?,
            bgl,
            absmax: Absmax::new(gpu)?,
            dummies: Stand(
                GpuBuffer::zeros(gpu, "tinyscript dummy x", 4)?,
                GpuBuffer::zeros(gpu, "tinyscript dummy codes", 4)?,
                GpuBuffer::zeros(gpu, "tinyscript dummy scales", 4)?,
                GpuBuffer::zeros(gpu, "tinyscript dummy levels", 4)?,
                GpuBuffer::zeros(gpu, "tinyscript dummy out", 4)?,
            ),
        })
    }

    /// Records one dispatch of `pipe` with params `p` on the given buffers (stand-ins for the
    /// absent ones).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        pipe: &wgpu::ComputePipeline,
        p: &TsParams,
        x: Option<&GpuBuffer<f32>>,
        codes: Option<&GpuBuffer<u32>>,
        scales: Option<&GpuBuffer<f32>>,
        levels: Option<&GpuBuffer<u32>>,
        out: Option<&GpuBuffer<f32>>,
        mask: Option<&GpuBuffer<f32>>,
        workgroups: u32,
    ) -> Result<()> {
        let params = uniform(gpu, "tinyscript", p);
        let step = enc.step_state(gpu).clone();
        let buffers = [
            &params,
            x.unwrap_or(&self.dummies.0).buffer(),
            codes.unwrap_or(&self.dummies.1).buffer(),
            scales.unwrap_or(&self.dummies.2).buffer(),
            levels.unwrap_or(&self.dummies.3).buffer(),
            out.unwrap_or(&self.dummies.4).buffer(),
            &step,
            mask.or(x).unwrap_or(&self.dummies.0).buffer(),
        ];
        dispatch(gpu, enc, "tinyscript", pipe, &self.bgl, &buffers, workgroups)
    }

    /// Records the moments of `x` into `out` `[3]`: `(Σ|x|, Σx², absmax)`.
    pub fn encode_moments(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        if x.is_empty() {
            return Err(Error::Empty("tinyscript moments"));
        }
        check_len("tinyscript moments", "out", out.len(), 3)?;
        let groups = x.len().div_ceil(MOMENTS_CHUNK);
        let partial = enc.scratch::<f32>(gpu, "tinyscript partial moments", 3 * groups)?;
        let p = TsParams { n: x.len() as u32, ..Default::default() };
        self.run(gpu, enc, &self.partial, &p, Some(x), None, None, None, Some(&partial), None, groups as u32)?;
        let p = TsParams { n: groups as u32, ..Default::default() };
        self.run(gpu, enc, &self.finish, &p, Some(&partial), None, None, None, Some(out), None, 1)
    }

    /// Measures `x` `[rows, cols]` on the GPU (submits and waits: its moments and every row's
    /// absmax) and builds TinyScript's signed `bits`-bit table for quantizing it one scale per
    /// row: the Weibull fit of |x| and the levels that minimize the variance of `|x| / rowmax`.
    pub fn fit(
        &self,
        gpu: &Gpu,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        bits: u32,
    ) -> Result<(Weibull, LevelTable)> {
        self.fit_as(gpu, x, rows, cols, false, bits, true)
    }

    /// As [`TinyScript::fit`]; with `transposed`, `x` is stored `[cols, rows]` (the rows to be
    /// scaled are its columns); `signed: false` builds an unsigned table (for nonnegative `x`).
    #[allow(clippy::too_many_arguments)]
    pub fn fit_as(
        &self,
        gpu: &Gpu,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        transposed: bool,
        bits: u32,
        signed: bool,
    ) -> Result<(Weibull, LevelTable)> {
        let (mean_abs, mean_sq, amax) = self.measure(gpu, x, &[(rows, cols, transposed)])?;
        levels_for_rows(bits, signed, mean_abs, mean_sq, &amax[0])
    }

    /// What a fit needs of `x`, in one submission: `(E|x|, E x², absmax of every row of each
    /// view)`, a view `(rows, cols, transposed)` being `x` read as `[rows, cols]` (stored
    /// `[cols, rows]` when transposed).
    fn measure(
        &self,
        gpu: &Gpu,
        x: &GpuBuffer<f32>,
        views: &[(usize, usize, bool)],
    ) -> Result<(f64, f64, Vec<Vec<f32>>)> {
        for &(rows, cols, _) in views {
            if rows == 0 || cols == 0 {
                return Err(Error::Empty("tinyscript fit"));
            }
            check_len("tinyscript fit", "x", x.len(), rows * cols)?;
        }
        let out = GpuBuffer::<f32>::zeros(gpu, "tinyscript moments", 3)?;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        self.encode_moments(gpu, &mut enc, x, &out)?;
        let mut amax = Vec::new();
        for &(rows, cols, transposed) in views {
            let layout = QuantLayout::new(rows, cols, Format::Int8, Granularity::PerRow)?;
            let a = GpuBuffer::<u32>::zeros(gpu, "tinyscript row absmax", rows)?;
            self.absmax.encode(gpu, &mut enc, x, &layout, transposed, &a)?;
            amax.push(a);
        }
        gpu.submit([enc.finish()]);
        let m = out.read(gpu)?;
        let amax = amax
            .iter()
            .map(|a| Ok(a.read(gpu)?.into_iter().map(f32::from_bits).collect()))
            .collect::<Result<Vec<Vec<f32>>>>()?;
        let n = x.len() as f64;
        Ok((m[0] as f64 / n, m[1] as f64 / n, amax))
    }

    /// The tables of two [`TinyScript::fit_as`] calls on `x` `[rows, cols]`, one for scaling
    /// its rows (`(bits, signed)` = `row_kind`) and one for scaling its columns (the rows of xᵀ,
    /// `col_kind`), with the moments measured once and one submission: a TinyScript gradient
    /// quantizes dY both ways. Returns `(fit, row table, column table)`.
    pub fn fit_rows_and_columns(
        &self,
        gpu: &Gpu,
        x: &GpuBuffer<f32>,
        (rows, cols): (usize, usize),
        row_kind: (u32, bool),
        col_kind: (u32, bool),
    ) -> Result<(Weibull, LevelTable, LevelTable)> {
        let (mean_abs, mean_sq, amax) = self.measure(gpu, x, &[(rows, cols, false), (cols, rows, true)])?;
        let (ra, ca) = (&amax[0], &amax[1]);
        let (fit, row_table) = levels_for_rows(row_kind.0, row_kind.1, mean_abs, mean_sq, ra)?;
        let (_, col_table) = levels_for_rows(col_kind.0, col_kind.1, mean_abs, mean_sq, ca)?;
        Ok((fit, row_table, col_table))
    }

    /// Records the per-row quantization of `x` `[rows, cols]` onto `table`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_quantize(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        table: &LevelTable,
        rounding: Rounding,
    ) -> Result<TinyScriptTensor> {
        self.encode_quantize_as(gpu, enc, x, rows, cols, false, table, rounding)
    }

    /// As [`TinyScript::encode_quantize`]; with `transposed`, `x` is stored `[cols, rows]` and
    /// its transpose `[rows, cols]` is quantized (the operand layout of a weight gradient).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_quantize_as(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        transposed: bool,
        table: &LevelTable,
        rounding: Rounding,
    ) -> Result<TinyScriptTensor> {
        let table = LevelTable::with_sign(table.bits, table.signed, table.levels.clone())?;
        let levels = GpuBuffer::from_slice(gpu, "tinyscript levels", &table.levels)?;
        self.encode_quantize_with(gpu, enc, x, rows, cols, transposed, &table, &levels, rounding)
    }

    /// As [`TinyScript::encode_quantize_as`] onto levels already on the GPU: `levels` holds
    /// `table`'s levels (a buffer the caller owns and may rewrite between submissions, as a
    /// training step plan does when it refits its tables; `table` gives their kind and count).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_quantize_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        transposed: bool,
        table: &LevelTable,
        levels: &GpuBuffer<u32>,
        rounding: Rounding,
    ) -> Result<TinyScriptTensor> {
        self.encode_quantize_under(gpu, enc, x, None, (rows, cols, transposed), table, levels, rounding)
    }

    /// As [`TinyScript::encode_quantize_with`] of x where `mask` (x's length, the same layout) is
    /// `> 0`, and of 0 elsewhere: ReLU's backward on load (`mask` the layer's output y), the same
    /// codes and scales as quantizing `relu_backward`'s output, without its launch or buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_quantize_masked_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        transposed: bool,
        table: &LevelTable,
        levels: &GpuBuffer<u32>,
        rounding: Rounding,
    ) -> Result<TinyScriptTensor> {
        self.encode_quantize_under(gpu, enc, x, Some(mask), (rows, cols, transposed), table, levels, rounding)
    }

    /// [`TinyScript::encode_quantize_with`], or with a mask [`TinyScript::encode_quantize_masked_with`]
    /// (the trainer's one call for either); `shape` is (rows, cols, transposed).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn encode_quantize_under(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: Option<&GpuBuffer<f32>>,
        (rows, cols, transposed): (usize, usize, bool),
        table: &LevelTable,
        levels: &GpuBuffer<u32>,
        rounding: Rounding,
    ) -> Result<TinyScriptTensor> {
        if rows == 0 || cols == 0 {
            return Err(Error::Empty("tinyscript quantize"));
        }
        check_len("tinyscript quantize", "x", x.len(), rows * cols)?;
        if let Some(m) = mask {
            check_len("tinyscript quantize", "mask", m.len(), x.len())?;
        }
        check_len("tinyscript quantize", "levels", levels.len(), table.levels.len())?;
        let words_per_row = cols.div_ceil(table.per_word() as usize);
        let t = TinyScriptTensor {
            codes: enc.scratch(gpu, "tinyscript codes", rows * words_per_row)?,
            scales: enc.scratch(gpu, "tinyscript scales", rows)?,
            levels: levels.clone(),
            table: table.clone(),
            rows,
            cols,
        };
        let (seed, stream, stochastic) = rounding.seed_stream();
        let p = TsParams {
            rows: rows as u32,
            cols: cols as u32,
            words_per_row: words_per_row as u32,
            bits: t.table.bits,
            n_levels: t.table.levels.len() as u32,
            seed,
            stochastic: stochastic as u32,
            n: (rows * cols) as u32,
            transposed: transposed as u32,
            signed: t.table.signed as u32,
            stream,
            masked: mask.is_some() as u32,
        };
        // A workgroup per row, or on a CPU adapter's layouts a thread per row (64 a workgroup)
        // where there are rows for two workgroups or more or the tensor is small, reading vec4s
        // where the shape allows; there a transposed x's few long rows take a workgroup per four.
        let (pipe, workgroups) = match &self.threads {
            Some(t) if rows >= 2 * THREAD_WG || rows * cols <= THREADS_BELOW => {
                match (transposed, cols % 4 == 0, rows % 4 == 0) {
                    (false, true, _) => (&t.row_v4, rows.div_ceil(THREAD_WG)),
                    (true, _, true) => (&t.quad_t, rows.div_ceil(4 * QUAD_WG)),
                    _ => (&t.row, rows.div_ceil(THREAD_WG)),
                }
            }
            Some(t) if transposed && rows % 4 == 0 && rows >= 8 => (&t.quad_team_t, rows / 4),
            _ => (&self.quantize, rows),
        };
        let (codes, scales) = (Some(&t.codes), Some(&t.scales));
        self.run(gpu, enc, pipe, &p, Some(x), codes, scales, Some(&t.levels), None, mask, workgroups as u32)?;
        Ok(t)
    }

    /// Records `out ← dequantize(t)` (`out` `[rows·cols]`).
    pub fn encode_dequantize(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        t: &TinyScriptTensor,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        check_len("tinyscript dequantize", "out", out.len(), t.rows * t.cols)?;
        let p = TsParams {
            rows: t.rows as u32,
            cols: t.cols as u32,
            words_per_row: t.cols.div_ceil(t.table.per_word() as usize) as u32,
            bits: t.table.bits,
            n_levels: t.table.levels.len() as u32,
            n: (t.rows * t.cols) as u32,
            signed: t.table.signed as u32,
            ..Default::default()
        };
        let n = ((t.rows * t.cols) as u32).div_ceil(WG);
        let (codes, scales, levels) = (Some(&t.codes), Some(&t.scales), Some(&t.levels));
        self.run(gpu, enc, &self.dequantize, &p, None, codes, scales, levels, Some(out), None, n)
    }
}
