//! `col_sum`: column sums of a `[rows, cols]` tensor (bias gradients, split-K's partial sums), a
//! two-level reduction over row chunks in a fixed order, one launch where there is one chunk (at
//! most 64 rows), the first level a workgroup tree on a GPU and a thread per (chunk, column) on a
//! CPU adapter (the same bits); [`ColSum::encode_masked`] sums x read as 0 wherever a mask (ReLU's
//! output Y) is not above 0 (a ReLU layer's bias gradient without a `relu_backward` launch; same
//! bits). Bindings: 0 params, 1 x, 2 out, 3 partial, 4 mask (x when unmasked).
//! Reference: [`crate::reference::col_sum`].

use super::quantize_fused::ReducePath;
use super::{check_len, dispatch, layouts, pipeline, reduce_chunks, uniform, Slot, REDUCE_COLS, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};

/// The column-sum kernel.
pub struct ColSum {
    bgl: wgpu::BindGroupLayout,
    partial: wgpu::ComputePipeline,
    finish: wgpu::ComputePipeline,
    /// The partial sums from a thread per (chunk, column) (entry `partial_thread`).
    per_thread: bool,
    /// Bound as x and the mask where `finish` runs alone (it reads neither).
    unread: GpuBuffer<f32>,
}

impl ColSum {
    /// Builds the two pipelines, the partial sums reduced as suits the adapter: a thread per
    /// (chunk, column) without barriers on a CPU adapter, the workgroup tree elsewhere.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_reduce_path(gpu, ReducePath::for_adapter(gpu))
    }

    /// Builds the two pipelines with the partial sums reduced by `path` (the same bits).
    pub fn with_reduce_path(gpu: &Gpu, path: ReducePath) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "col_sum", &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Write, Slot::Read]);
        let per_thread = path == ReducePath::PerThread;
        Ok(ColSum {
            partial: pipeline(gpu, "col_sum", if per_thread { "partial_thread" } else { "partial_main" }, &pl, &[])?,
            finish: pipeline(gpu, "col_sum", "finish", &pl, &[])?,
            per_thread,
            unread: GpuBuffer::zeros(gpu, "col_sum unread", 1)?,
            bgl,
        })
    }

    /// Records `out[j] ← Σ_i x[i][j]`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, None, rows, cols, out)
    }

    /// Records `out[j] ← Σ_i (mask[i][j] > 0 ? x[i][j] : 0)`: the column sums of what
    /// `relu_backward` writes from `mask` (Y) and `x` (dY), bit for bit.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_masked(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.record(gpu, enc, x, Some(mask), rows, cols, out)
    }

    /// Records col_sum's second level alone: `out[j] ← partial[0][j] + partial[1][j] + …` in chunk
    /// order, `partial` `[chunks, cols]` the first level's sums over the chunks of `rows` rows
    /// ([`crate::reference::col_sum::partial_sums`]; written by another kernel, as
    /// [`HadamardQuantizeTranspose`](super::hadamard_quantize_transpose::HadamardQuantizeTranspose)
    /// writes them): with them, the bits of [`ColSum::encode`]. `rows` must take more than one
    /// chunk (with one, the partial sums are the sums).
    pub fn encode_finish(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        partial: &GpuBuffer<f32>,
        rows: usize,
        cols: usize,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        let (chunk_rows, chunks) = reduce_chunks(rows);
        if chunks == 1 {
            return Err(Error::InvalidArgument(format!(
                "col_sum: {rows} rows are one chunk, whose partial sums are already the sums"
            )));
        }
        check_len("col_sum", "partial", partial.len(), chunks * cols)?;
        check_len("col_sum", "out", out.len(), cols)?;
        let p = [rows as u32, cols as u32, chunk_rows as u32, chunks as u32, 0, 0, 0, 0];
        let params = uniform(gpu, "col_sum", &p);
        let unread = self.unread.buffer();
        let buffers = [&params, unread, out.buffer(), partial.buffer(), unread];
        dispatch(gpu, enc, "col_sum", &self.finish, &self.bgl, &buffers, (cols as u32).div_ceil(WG))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        x: &GpuBuffer<f32>,
        mask: Option<&GpuBuffer<f32>>,
        rows: usize,
        cols: usize,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        if rows == 0 || cols == 0 {
            return Err(Error::Empty("col_sum"));
        }
        check_len("col_sum", "x", x.len(), rows * cols)?;
        check_len("col_sum", "out", out.len(), cols)?;
        if let Some(m) = mask {
            check_len("col_sum", "mask", m.len(), rows * cols)?;
        }
        let (chunk_rows, chunks) = reduce_chunks(rows);
        let p = [rows as u32, cols as u32, chunk_rows as u32, chunks as u32, mask.is_some() as u32, 0, 0, 0];
        let params = uniform(gpu, "col_sum", &p);
        let partial_groups =
            if self.per_thread { (chunks * cols).div_ceil(WG as usize) } else { cols.div_ceil(REDUCE_COLS) * chunks }
                as u32;
        let mask = mask.unwrap_or(x);
        if chunks == 1 {
            // One chunk: the first level writes `out` (bound again where `partial` goes, unused).
            let buffers = [&params, x.buffer(), out.buffer(), out.buffer(), mask.buffer()];
            return dispatch(gpu, enc, "col_sum", &self.partial, &self.bgl, &buffers, partial_groups);
        }
        let partial = enc.scratch::<f32>(gpu, "col_sum partial", chunks * cols)?;
        let buffers = [&params, x.buffer(), out.buffer(), partial.buffer(), mask.buffer()];
        dispatch(gpu, enc, "col_sum", &self.partial, &self.bgl, &buffers, partial_groups)?;
        dispatch(gpu, enc, "col_sum", &self.finish, &self.bgl, &buffers, (cols as u32).div_ceil(WG))
    }
}
