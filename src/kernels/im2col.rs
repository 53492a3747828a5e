//! `im2col`: the unfold (`im2col`) and its adjoint fold (`col2im`) that turn a 2-D convolution
//! on NHWC tensors into a GEMM: `cols[B·OH·OW, KH·KW·C] · W[OC, KH·KW·C]ᵀ = y[B·OH·OW, OC]`.
//! Bindings: 0 params, 1 src, 2 dst. Reference: [`crate::reference::im2col`].

use super::{check_len, dispatch, layouts, pipeline, uniform, Slot, WG};
use crate::tensor::GpuBuffer;
use crate::{Error, Gpu, Result};
use bytemuck::{Pod, Zeroable};

/// A convolution's geometry (square stride and padding).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Batch.
    pub batch: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
}

impl ConvGeom {
    /// Output height.
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }
    /// Output width.
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }
    /// Rows of the unfolded matrix.
    pub fn rows(&self) -> usize {
        self.batch * self.oh() * self.ow()
    }
    /// Columns of the unfolded matrix (the GEMM's K).
    pub fn kdim(&self) -> usize {
        self.kh * self.kw * self.c
    }
    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.batch * self.h * self.w * self.c
    }
    /// Fails unless the geometry is usable.
    pub fn check(&self) -> Result<()> {
        if [self.batch, self.h, self.w, self.c, self.kh, self.kw, self.stride].contains(&0) {
            return Err(Error::InvalidArgument(format!("convolution geometry with a zero: {self:?}")));
        }
        if self.h + 2 * self.pad < self.kh || self.w + 2 * self.pad < self.kw {
            return Err(Error::InvalidArgument(format!("kernel larger than the padded input: {self:?}")));
        }
        Ok(())
    }
}

/// Mirror of `ConvParams` in `shaders/common/conv.wgsl`.
#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
pub(crate) struct ConvParams {
    batch: u32,
    h: u32,
    w: u32,
    c: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    oh: u32,
    ow: u32,
    total: u32,
    pad0: u32,
}
const _: () = assert!(std::mem::size_of::<ConvParams>() == 48);

impl ConvParams {
    /// `g`'s parameters, with `total` the launch's output count.
    pub(crate) fn new(g: &ConvGeom, total: usize) -> Self {
        ConvParams {
            batch: g.batch as u32,
            h: g.h as u32,
            w: g.w as u32,
            c: g.c as u32,
            kh: g.kh as u32,
            kw: g.kw as u32,
            stride: g.stride as u32,
            pad: g.pad as u32,
            oh: g.oh() as u32,
            ow: g.ow() as u32,
            total: total as u32,
            pad0: 0,
        }
    }
}

/// Both directions of the unfold.
pub struct Im2col {
    bgl: wgpu::BindGroupLayout,
    unfold: wgpu::ComputePipeline,
    fold: wgpu::ComputePipeline,
    /// A thread per row of cols / pixel of dx (entries `im2col_rows`, `col2im_pixels`).
    per_row: bool,
    /// On the per-row path, `im2col_rows_v4` (vec4s), taken where channels are a multiple of 4.
    unfold_v4: Option<wgpu::ComputePipeline>,
}

impl Im2col {
    /// Builds the pipelines: a thread per row of cols (per pixel of dx) on a CPU adapter, where
    /// SIMD integer division runs lane by lane (llvmpipe: the per-value index arithmetic cost
    /// more than the copy), a thread per value elsewhere.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Self::with_thread_per_row(gpu, gpu.cpu_layouts())
    }

    /// Builds the pipelines of either layout (the same values and sums).
    pub fn with_thread_per_row(gpu: &Gpu, per_row: bool) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "im2col", &[Slot::Uniform, Slot::Read, Slot::Write]);
        let (unfold, fold) = if per_row { ("im2col_rows", "col2im_pixels") } else { ("im2col", "col2im") };
        Ok(Im2col {
            unfold: pipeline(gpu, "im2col", unfold, &pl, &[])?,
            fold: pipeline(gpu, "im2col", fold, &pl, &[])?,
            unfold_v4: if per_row { Some(pipeline(gpu, "im2col", "im2col_rows_v4", &pl, &[])?) } else { None },
            per_row,
            bgl,
        })
    }

    fn run(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        fold: bool,
        src: &GpuBuffer<f32>,
        dst: &GpuBuffer<f32>,
    ) -> Result<()> {
        g.check()?;
        let (src_len, dst_len) =
            if fold { (g.rows() * g.kdim(), g.input_len()) } else { (g.input_len(), g.rows() * g.kdim()) };
        check_len("im2col", "src", src.len(), src_len)?;
        check_len("im2col", "dst", dst.len(), dst_len)?;
        let params = uniform(gpu, "im2col", &ConvParams::new(g, dst_len));
        let threads = match (self.per_row, fold) {
            (false, _) => dst_len,
            (true, false) => g.rows(),
            (true, true) => g.batch * g.h * g.w,
        } as u32;
        dispatch(
            gpu,
            enc,
            "im2col",
            match (fold, &self.unfold_v4) {
                (true, _) => &self.fold,
                (false, Some(v4)) if g.c.is_multiple_of(4) => v4,
                (false, _) => &self.unfold,
            },
            &self.bgl,
            &[&params, src.buffer(), dst.buffer()],
            threads.div_ceil(WG),
        )
    }

    /// Records `cols ← im2col(x)`.
    pub fn encode_unfold(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        x: &GpuBuffer<f32>,
        cols: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.run(gpu, enc, g, false, x, cols)
    }

    /// Records `dx ← col2im(dcols)`.
    pub fn encode_fold(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        g: &ConvGeom,
        dcols: &GpuBuffer<f32>,
        dx: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.run(gpu, enc, g, true, dcols, dx)
    }
}
