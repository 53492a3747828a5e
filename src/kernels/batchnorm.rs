//! `batchnorm`: batch normalization of a channels-last `[rows, channels]` tensor with learnable
//! γ, β and an optional fused ReLU; training (batch statistics, running-statistics update) and
//! inference (running statistics) forward passes, and the backward pass (dγ, dβ, dx). The
//! running-statistics update is a pass of its own ([`BatchNorm::encode_commit_running`], and
//! [`BatchNorm::encode_commit_many`] for many layers a launch: [`super::batchnorm_commit`]),
//! which does nothing while the recorder's status is set (see [`super::finite`]): a training step
//! records it for all its layers after checking its gradients. Bindings: 0 params, 1 x, 2 stats,
//! 3 affine, 4 running, 5 y, 6 dy, 7 dx, 8 sums; see the shader header for the math.
//! [`BatchNorm::encode_backward_maxima`] also writes the maxima of dxᵀ's scale groups in the `dx`
//! launch (binding 4, which the backward does not otherwise use), for the quantizer of a
//! convolution's dYᵀ, so that its two-pass chain needs no `absmax` launch.
//! Reference: [`crate::reference::batchnorm`].

use super::batchnorm_commit::{BatchNormCommit, NormCommit};
use super::quantize_fused::ReducePath;
use super::{check_len, dispatch, layouts, pipeline, reduce_chunks, uniform, Slot, REDUCE_COLS, WG};
use crate::scheme::Granularity;
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct NormParams {
    rows: u32,
    channels: u32,
    eps: f32,
    relu: u32,
    chunk_rows: u32,
    chunks: u32,
    seg: u32,
    row_mul: u32,
    span_rows: u32,
    spans: u32,
    pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<NormParams>() == 48);

/// Rows per thread of the vec4 elementwise entries (`forward_v4`, `backward_v4`: one vec4 of
/// channels over this many rows, the channels' statistics loaded once); the shader's `V4_ROWS`.
pub const V4_ROWS: usize = 8;

/// Rows a lane of `backward_maxima` takes at least.
const MAXIMA_LANE_ROWS: usize = 8;

/// At most this many spans of rows in `backward_maxima` (atomics on each channel's maximum).
const MAXIMA_SPANS: usize = 1024;

/// ε added to the variance.
pub const EPS: f32 = 1e-5;
/// Weight of the new batch in the running statistics.
pub const MOMENTUM: f32 = 0.1;

/// The buffers of one batch-norm layer and step. `stats` `[3C]` (mean, invstd, and the batch's
/// unbiased variance for the running statistics), `affine` `[2C]`
/// (γ, β), `running` `[2C]` (mean, variance), `x`/`y` `[rows·C]`; the backward adds `dy`, `dx`
/// `[rows·C]` and `sums` `[2C]` (dγ, dβ).
pub struct NormBuffers<'a> {
    /// Input.
    pub x: &'a GpuBuffer<f32>,
    /// Batch (or running) mean and inverse standard deviation, then the batch's unbiased variance.
    pub stats: &'a GpuBuffer<f32>,
    /// γ then β.
    pub affine: &'a GpuBuffer<f32>,
    /// Running mean then running variance.
    pub running: &'a GpuBuffer<f32>,
    /// Output.
    pub y: &'a GpuBuffer<f32>,
    /// Gradient of the output (backward).
    pub dy: Option<&'a GpuBuffer<f32>>,
    /// Gradient of the input (backward).
    pub dx: Option<&'a GpuBuffer<f32>>,
    /// dγ then dβ (backward).
    pub sums: Option<&'a GpuBuffer<f32>>,
}

/// Which grid a pass runs on.
#[derive(Copy, Clone)]
enum Pass {
    /// Per-chunk partial sums (the forward's moments, or the backward's Σg·x̂ and Σg).
    Partial,
    PerChannel,
    PerElement,
    /// `backward_maxima`'s tiles of channels × spans of rows (`backward_block_maxima`'s threads
    /// per channel and block).
    Maxima,
}

/// Elements of a `stats` buffer for `channels` channels.
pub fn stats_len(channels: usize) -> usize {
    3 * channels
}

/// The batch-norm kernels.
pub struct BatchNorm {
    bgl: wgpu::BindGroupLayout,
    moments: wgpu::ComputePipeline,
    finish_moments: wgpu::ComputePipeline,
    partial: wgpu::ComputePipeline,
    commit: BatchNormCommit,
    finish_grad: wgpu::ComputePipeline,
    eval_stats: wgpu::ComputePipeline,
    forward: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    /// `dx` with its maxima (every adapter: no CPU layout of its own).
    backward_maxima: wgpu::ComputePipeline,
    /// `dx` with its blocks' maxima.
    backward_block_maxima: wgpu::ComputePipeline,
    dummy: GpuBuffer<f32>,
    /// The partial sums from a thread per (chunk, channel) (entries `moments_thread`,
    /// `partial_thread`).
    per_thread: bool,
    /// On the per-thread path, `forward_v4` and `backward_v4` (a vec4 of channels over
    /// [`V4_ROWS`] rows per thread, for channels in multiples of 4).
    v4: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
}

impl BatchNorm {
    /// Builds the pipelines (batchnorm's nine, batchnorm_commit's one), the partial sums reduced
    /// as suits the adapter: a thread per (chunk, channel) without barriers on a CPU adapter, the
    /// workgroup tree elsewhere.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_reduce_path(gpu, ReducePath::for_adapter(gpu))
    }

    /// Builds the pipelines with the partial sums reduced by `path` (the same bits).
    pub fn with_reduce_path(gpu: &Gpu, path: ReducePath) -> Result<Self> {
        let per_thread = path == ReducePath::PerThread;
        let mut slots = vec![Slot::Uniform, Slot::Read];
        slots.extend([Slot::Write; 7]);
        let (bgl, pl) = layouts(gpu, "batchnorm", &slots);
        let p = |e| pipeline(gpu, "batchnorm", e, &pl, &[("V4_ROWS", V4_ROWS as f64)]);
        Ok(BatchNorm {
            moments: p(if per_thread { "moments_thread" } else { "moments_main" })?,
            finish_moments: p("finish_moments")?,
            partial: p(if per_thread { "partial_thread" } else { "partial_main" })?,
            per_thread,
            commit: BatchNormCommit::new(gpu)?,
            finish_grad: p("finish_grad")?,
            eval_stats: p("eval_stats")?,
            forward: p("forward")?,
            backward: p("backward")?,
            backward_maxima: p("backward_maxima")?,
            backward_block_maxima: p("backward_block_maxima")?,
            v4: if per_thread { Some((p("forward_v4")?, p("backward_v4")?)) } else { None },
            bgl,
            dummy: GpuBuffer::zeros(gpu, "batchnorm dummy", 4)?,
        })
    }

    /// The buffers' lengths against `rows` and `channels`.
    fn check(b: &NormBuffers, rows: usize, channels: usize) -> Result<()> {
        if rows == 0 || channels == 0 {
            return Err(Error::Empty("batchnorm"));
        }
        check_len("batchnorm", "x", b.x.len(), rows * channels)?;
        check_len("batchnorm", "y", b.y.len(), rows * channels)?;
        check_len("batchnorm", "stats", b.stats.len(), stats_len(channels))?;
        for (n, buf) in [("affine", b.affine), ("running", b.running)] {
            check_len("batchnorm", n, buf.len(), 2 * channels)?;
        }
        if let Some(s) = b.sums {
            check_len("batchnorm", "sums", s.len(), 2 * channels)?;
        }
        for (n, buf) in [("dy", b.dy), ("dx", b.dx)] {
            if let Some(buf) = buf {
                check_len("batchnorm", n, buf.len(), rows * channels)?;
            }
        }
        Ok(())
    }

    /// Checks the buffers, then records `passes` in order (one uniform for them all); with
    /// `maxima` (the buffer and the granularity of dxᵀ's groups), clears it first and binds it
    /// for [`Pass::Maxima`].
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
        relu: bool,
        passes: &[(&wgpu::ComputePipeline, Pass)],
        maxima: Option<(&GpuBuffer<u32>, Granularity)>,
    ) -> Result<()> {
        Self::check(b, rows, channels)?;
        if let Some((m, gran)) = maxima {
            check_len("batchnorm", "maxima", m.len(), Self::maxima_len(rows, channels, gran)?)?;
        }
        let (chunk_rows, chunks) = reduce_chunks(rows);
        // backward_maxima: absmax main_t's channels a workgroup, spans of MAXIMA_LANE_ROWS rows a
        // lane (longer where that would make more than MAXIMA_SPANS spans: the atomics on each
        // channel's maximum); backward_block_maxima: a span per block.
        let seg = super::row_team(channels as u32).clamp(8, 32);
        let lanes = WG / seg;
        let span_rows = match maxima {
            Some((_, Granularity::PerBlock(block))) => block as usize,
            _ => (lanes as usize * MAXIMA_LANE_ROWS).max(rows.div_ceil(MAXIMA_SPANS)).next_multiple_of(lanes as usize),
        };
        let spans = rows.div_ceil(span_rows);
        let params = NormParams {
            rows: rows as u32,
            channels: channels as u32,
            eps: EPS,
            relu: relu as u32,
            chunk_rows: chunk_rows as u32,
            chunks: chunks as u32,
            seg,
            row_mul: maxima.is_some_and(|(_, gran)| gran == Granularity::PerRow) as u32,
            span_rows: span_rows as u32,
            spans: spans as u32,
            pad: [0; 2],
        };
        let d = &self.dummy;
        let uniform = uniform(gpu, "batchnorm", &params);
        if let Some((m, _)) = maxima {
            enc.clear(m.buffer());
        }
        for (which, pass) in passes {
            let bufs = [
                &uniform,
                b.x.buffer(),
                b.stats.buffer(),
                b.affine.buffer(),
                match (pass, maxima) {
                    (Pass::Maxima, Some((m, _))) => m.buffer(),
                    _ => b.running.buffer(),
                },
                b.y.buffer(),
                b.dy.unwrap_or(d).buffer(),
                b.dx.unwrap_or(d).buffer(),
                b.sums.unwrap_or(d).buffer(),
            ];
            // A vec4 of channels over V4_ROWS rows per thread where the adapter takes them and
            // channels allow.
            let v4 = self.v4.as_ref().filter(|_| channels.is_multiple_of(4)).and_then(|(f, bw)| {
                let is = |k: &wgpu::ComputePipeline| std::ptr::eq(*which, k);
                (is(&self.forward).then_some(f)).or(is(&self.backward).then_some(bw))
            });
            let workgroups = match pass {
                Pass::Partial if self.per_thread => (channels * chunks).div_ceil(WG as usize),
                Pass::Partial => channels.div_ceil(REDUCE_COLS) * chunks,
                Pass::PerChannel => channels.div_ceil(WG as usize),
                Pass::PerElement if v4.is_some() => (rows.div_ceil(V4_ROWS) * channels / 4).div_ceil(WG as usize),
                Pass::PerElement => (rows * channels).div_ceil(WG as usize),
                Pass::Maxima => match maxima {
                    Some((_, Granularity::PerBlock(_))) => (channels * spans).div_ceil(WG as usize),
                    _ => channels.div_ceil(seg as usize) * spans,
                },
            };
            dispatch(gpu, enc, "batchnorm", v4.unwrap_or(which), &self.bgl, &bufs, workgroups as u32)?;
        }
        Ok(())
    }

    /// Training forward: batch statistics and `y`, then the running statistics updated (the commit
    /// pass).
    pub fn encode_train_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
        relu: bool,
    ) -> Result<()> {
        self.train_forward(gpu, enc, b, rows, channels, relu, true)
    }

    /// Training forward without updating the running statistics: record
    /// [`BatchNorm::encode_commit_running`] later (a training step does, after its check).
    pub fn encode_train_forward_deferred(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
        relu: bool,
    ) -> Result<()> {
        self.train_forward(gpu, enc, b, rows, channels, relu, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn train_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
        relu: bool,
        commit: bool,
    ) -> Result<()> {
        if rows < 2 {
            return Err(Error::InvalidArgument(format!(
                "batch norm in training needs at least 2 values per channel, got {rows}"
            )));
        }
        // The moments in one pass over x (each chunk's sum and squared deviations about its own
        // mean), merged per channel: three launches with the elementwise pass. The commit reads
        // only the statistics, which y's pass leaves alone, so it comes after.
        let passes = [
            (&self.moments, Pass::Partial),
            (&self.finish_moments, Pass::PerChannel),
            (&self.forward, Pass::PerElement),
        ];
        self.record(gpu, enc, b, rows, channels, relu, &passes, None)?;
        if commit {
            self.encode_commit_many(gpu, enc, &[NormCommit { stats: b.stats, running: b.running, channels }])?;
        }
        Ok(())
    }

    /// Updates the running statistics from the batch statistics a training forward left in
    /// `b.stats`, unless the recorder's status is set.
    pub fn encode_commit_running(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
    ) -> Result<()> {
        Self::check(b, rows, channels)?;
        self.encode_commit_many(gpu, enc, &[NormCommit { stats: b.stats, running: b.running, channels }])
    }

    /// [`BatchNorm::encode_commit_running`] of many layers, [`BatchNormCommit::per_dispatch`] a
    /// launch (8 where the adapter binds 17 storage buffers a stage): what a training step
    /// records once for all its batch-norm layers after checking its gradients.
    pub fn encode_commit_many(&self, gpu: &Gpu, enc: &mut impl crate::Record, layers: &[NormCommit]) -> Result<()> {
        self.commit.encode(gpu, enc, layers)
    }

    /// Inference forward with the running statistics.
    pub fn encode_eval_forward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
        relu: bool,
    ) -> Result<()> {
        let passes = [(&self.eval_stats, Pass::PerChannel), (&self.forward, Pass::PerElement)];
        self.record(gpu, enc, b, rows, channels, relu, &passes, None)
    }

    /// Backward: `sums ← (dγ, dβ)`, then `dx`. Needs `dy`, `dx` and `sums`.
    pub fn encode_backward(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
        relu: bool,
    ) -> Result<()> {
        self.backward_passes(gpu, enc, b, rows, channels, relu, None)
    }

    /// [`BatchNorm::encode_backward`] whose `dx` launch also writes into `maxima` the largest
    /// finite, normal |dx| of each scale group of dxᵀ (`[channels, rows]`) under `granularity`, as
    /// ordered f32 bits, in group order: per row, one per channel; per tensor, one; per block of
    /// b, one per b rows of a channel (`channels · ⌈rows / b⌉`). What `absmax` writes for dxᵀ, so
    /// that quantizing dxᵀ takes only the second launch of the two-pass chain
    /// ([`crate::quant::Quantizer::quantize_transposed_given_maxima`]). The same launches as
    /// [`BatchNorm::encode_backward`] and the same `dx` and sums, bit for bit; `maxima` is cleared
    /// first.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_backward_maxima(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
        relu: bool,
        maxima: &GpuBuffer<u32>,
        granularity: Granularity,
    ) -> Result<()> {
        self.backward_passes(gpu, enc, b, rows, channels, relu, Some((maxima, granularity)))
    }

    /// The length of [`BatchNorm::encode_backward_maxima`]'s `maxima` for dx `[rows, channels]`
    /// under `granularity`; an error for a block of 0 rows.
    pub fn maxima_len(rows: usize, channels: usize, granularity: Granularity) -> Result<usize> {
        match granularity {
            Granularity::PerTensor => Ok(1),
            Granularity::PerRow => Ok(channels),
            Granularity::PerBlock(0) => Err(Error::InvalidArgument("batchnorm maxima: blocks of 0 rows".into())),
            Granularity::PerBlock(b) => Ok(channels * rows.div_ceil(b as usize)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_passes(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        b: &NormBuffers,
        rows: usize,
        channels: usize,
        relu: bool,
        maxima: Option<(&GpuBuffer<u32>, Granularity)>,
    ) -> Result<()> {
        if b.dy.is_none() || b.dx.is_none() || b.sums.is_none() {
            return Err(Error::InvalidArgument("batchnorm backward needs dy, dx and sums".into()));
        }
        if rows < 2 {
            return Err(Error::InvalidArgument(format!("batch norm backward needs at least 2 rows, got {rows}")));
        }
        let last = match maxima {
            Some((_, Granularity::PerBlock(_))) => (&self.backward_block_maxima, Pass::Maxima),
            Some(_) => (&self.backward_maxima, Pass::Maxima),
            None => (&self.backward, Pass::PerElement),
        };
        let passes = [(&self.partial, Pass::Partial), (&self.finish_grad, Pass::PerChannel), last];
        self.record(gpu, enc, b, rows, channels, relu, &passes, maxima)
    }
}
