//! `gemm_fp8`: FP8 GEMM (E4M3 × E4M3 forward, E5M2 gradient × E4M3 backward, MXFP8 × MXFP8 —
//! E4M3 values with power-of-two scales per 32 — any pairing).
//!
//! Math: `C = epilogue(deq(A)·deq(B)ᵀ)` with f32 accumulation, where `deq` is exactly what the
//! `dequantize` kernel computes (code value × group scale); A `[M, K]`, B `[N, K]` packed along K.
//! Layout: codes decoded and scaled on their way into workgroup memory; 128×128 (the tile
//! shared with gemm_f32), 64×64 or 32×32 output tiles ([`Tile`], tuned per shape class), 16×16
//! threads. On a CPU adapter with 8-lane subgroups (lavapipe) the untiled entry points
//! ([`GemmFp8::encode`], `encode_batched`) run `gemm_fp8_lanes` instead (gemm_f32_lanes' subgroup
//! tiles on the decoded values); elsewhere, on an adapter with f16 cooperative matrices, they run
//! `gemm_fp8_coop` where it takes the operands (within its f32 bound, not these tiles' bits;
//! [`GemmFp8::encode_coop`] asks for it by name); the `_with` entry points always run the tile
//! they are given.
//! Bindings: 0 `GemmParams`, 1 a codes, 2 a scales, 3 b codes, 4 b scales, 5 bias, 6 c,
//! 7 amax. Reference: [`crate::reference::gemm_fp8`].

use super::gemm::{
    dispatch_packed, encode_split, pick_fastest, scratch_operand, Dummies, Epilogue, GemmParams, Tile, TileCache,
    TilePipelines, PACKED_SLOTS,
};
use super::gemm_f32_lanes::GemmF32Lanes;
use super::gemm_fp8_coop::{bound, GemmFp8Coop};
use super::gemm_fp8_lanes::GemmFp8Lanes;
use super::gemm_int::checked_packed_params;
use super::gemm_int_coop::{build_coop, coop_or_error, GemmIntCoop};
use super::{layouts, pipeline};
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::tensor::GpuBuffer;
use crate::timing::gpu_seconds;
use crate::{Error, Gpu, Result};

/// The FP8 GEMM for one pair of operand formats.
pub struct GemmFp8 {
    fmt_a: Format,
    fmt_b: Format,
    bgl: wgpu::BindGroupLayout,
    pipelines: TilePipelines,
    /// `gemm_fp8_lanes`, on a CPU adapter with 8-lane subgroups.
    lanes: Option<GemmFp8Lanes>,
    /// `gemm_fp8_coop`, on an adapter with f16 cooperative matrices whose products kept within
    /// their bound of the reference when this kernel was built ([`GemmFp8::coop_refusal`]
    /// otherwise).
    coop: Option<GemmFp8Coop>,
    /// Why `coop` is not used though the adapter has the unit: `LOWBIT_COOP=0`, its build's
    /// error or its self-check's result.
    coop_refusal: Option<String>,
    dummies: Dummies,
    cache: TileCache,
}

/// `Ok` if both operand formats are FP8 ones (fp8-e4m3, fp8-e5m2, mxfp8), else the error naming
/// kernel `op` (the FP8 GEMMs and `gemm_fp8_col2im`).
pub(crate) fn check_fp8_formats(op: &str, formats: [Format; 2]) -> Result<()> {
    match formats.into_iter().find(|f| !f.is_fp8()) {
        Some(f) => Err(Error::InvalidArgument(format!("{op} takes fp8-e4m3, fp8-e5m2 or mxfp8 operands, not {f}"))),
        None => Ok(()),
    }
}

impl GemmFp8 {
    /// Builds the pipeline for A in `fmt_a` and B in `fmt_b` (each fp8-e4m3, fp8-e5m2 or mxfp8).
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        check_fp8_formats("gemm_fp8", [fmt_a, fmt_b])?;
        let (bgl, pl) = layouts(gpu, "gemm_fp8", PACKED_SLOTS);
        let c = [("FMT_A", fmt_a.id() as f64), ("FMT_B", fmt_b.id() as f64)];
        GemmFp8 {
            fmt_a,
            fmt_b,
            pipelines: TilePipelines::new(&Tile::ALL, |t| {
                pipeline(gpu, "gemm_fp8", t.entry(), &pl, &[c[0], c[1], ("TPT", t.tpt().min(4) as f64)])
            })?,
            lanes: match GemmF32Lanes::chosen(gpu) {
                true => Some(GemmFp8Lanes::new(gpu, fmt_a, fmt_b)?),
                false => None,
            },
            coop: None,
            coop_refusal: None,
            bgl,
            dummies: Dummies::new(gpu)?,
            cache: TileCache::new(gpu),
        }
        .with_coop_checked(gpu)
    }

    /// Where the adapter has f16 cooperative matrices, builds `gemm_fp8_coop`, runs it on one
    /// product of finite codes drawn at random with varied scales (two tiles' rows, a partial
    /// tile of columns, K over many of the unit's steps) and keeps it only if every output is
    /// within [`bound`] of the CPU reference, as it must be (see the shader): the dispatcher picks
    /// the unit on adapters no test may have run it on, and a driver that cannot build it, or a
    /// unit that adds less precisely than f32, leaves the SIMD tiles to run its products
    /// ([`GemmFp8::coop_refusal`] says why).
    fn with_coop_checked(mut self, gpu: &Gpu) -> Result<Self> {
        (self.coop, self.coop_refusal) =
            build_coop(gpu, "gemm_fp8_coop", || GemmFp8Coop::new(gpu, self.fmt_a, self.fmt_b))?;
        if self.coop.is_none() {
            return Ok(self);
        }
        let (m, n, k) = (70, 40, 1100);
        let (a, b) = (check_operand(gpu, m, k, self.fmt_a, 1)?, check_operand(gpu, n, k, self.fmt_b, 2)?);
        let unit = GpuBuffer::<f32>::zeros(gpu, "coop check", m * n)?;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        self.encode_coop(gpu, &mut enc, &a, &b, &Epilogue::default(), &unit)?;
        gpu.queue.submit([enc.finish()]);
        let got = unit.read(gpu)?;
        let want = crate::reference::gemm_fp8_coop::gemm_fp8_coop(
            &a.codes.read(gpu)?,
            &a.scales.read(gpu)?,
            &a.layout,
            &b.codes.read(gpu)?,
            &b.scales.read(gpu)?,
            &b.layout,
            &Default::default(),
        );
        let rel = bound(k, k.div_ceil(a.layout.shared_chunk(&b.layout) as usize));
        let off = |i: usize| {
            let d = (got[i] as f64 - want.value[i]).abs();
            d.is_nan() || d > rel * want.magnitude[i]
        };
        if let Some(i) = (0..got.len()).find(|&i| off(i)) {
            self.coop = None;
            self.coop_refusal = Some(format!(
                "gemm_fp8_coop ({} × {}) left its f32 bound of the reference on {} ({} of {m}×{n}×{k} outputs, \
                 first [{i}]: {} against {}), so the SIMD kernels run its products",
                self.fmt_a,
                self.fmt_b,
                gpu.report().name,
                (0..got.len()).filter(|&i| off(i)).count(),
                got[i],
                want.value[i]
            ));
        }
        Ok(self)
    }

    /// The cooperative matrices' size (8 or 16) where this kernel runs products on the unit.
    pub fn coop_size(&self) -> Option<u32> {
        self.coop.as_ref().map(GemmFp8Coop::matrix_size)
    }

    /// Why this kernel does not use the adapter's cooperative-matrix unit though it has one
    /// (`LOWBIT_COOP=0` turned it off, the driver could not build it, or its products left their
    /// bound when it was built); `None` where it uses it or the adapter has none.
    pub fn coop_refusal(&self) -> Option<&str> {
        self.coop_refusal.as_deref()
    }

    /// Whether the untiled entry points run `gemm_fp8_coop` for these operands: on an adapter
    /// with f16 cooperative matrices where the lanes kernel does not run, for what
    /// [`GemmIntCoop::fits`].
    pub fn runs_coop(&self, a: &QuantizedTensor, b: &QuantizedTensor) -> bool {
        self.lanes.is_none() && self.coop.as_ref().is_some_and(|k| GemmIntCoop::fits(k.matrix_size(), a, b))
    }

    /// Records `c ← epilogue(deq(A)·deq(B)ᵀ)` on the cooperative-matrix unit (`gemm_fp8_coop`,
    /// 64×64 tiles, split along K as the 64×64 tiles split), within [`bound`] of the exact
    /// product. An error, recording nothing, on an adapter without f16 cooperative matrices or
    /// for operands it does not take ([`GemmIntCoop::fits`]).
    pub fn encode_coop(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.encode_coop_batched(gpu, enc, a, b, 1, epi, c)
    }

    /// [`GemmFp8::encode_coop`] of `batches` products at once, as [`GemmFp8::encode_batched`]
    /// takes them.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_coop_batched(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let coop = self.coop.as_ref().map(GemmFp8Coop::pipeline);
        let coop = coop_or_error(gpu, "gemm_fp8_coop", coop, self.coop_refusal.as_deref())?;
        let p = self.checked_params(a, b, epi, Tile::T64, batches, c)?;
        coop.check(a, b)?;
        encode_split(gpu, enc, &self.dummies.sum, p, c, |enc, target, p| {
            coop.record(gpu, enc, p, &self.dummies, a, b, epi, target)
        })
    }

    /// Whether this adapter runs `gemm_fp8_lanes` for [`GemmFp8::encode`] and
    /// [`GemmFp8::encode_batched`] (a CPU adapter with 8-lane subgroups).
    pub fn uses_lanes(&self) -> bool {
        self.lanes.is_some()
    }

    /// Records `c ← epilogue(deq(A)·deq(B)ᵀ)` with the tuned (or heuristic) tile.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.encode_batched(gpu, enc, a, b, 1, epi, c)
    }

    /// The tile `tune` chose for this shape's class, if it ran.
    pub fn tuned(&self, m: usize, n: usize, k: usize) -> Option<Tile> {
        self.cache.get(m, n, k)
    }

    /// Times every tile candidate on an `m × n × k` product (scratch operands; submits and
    /// waits) and caches the fastest for the shape's class.
    pub fn tune(&self, gpu: &Gpu, m: usize, n: usize, k: usize) -> Result<(Tile, Vec<(Tile, f64)>)> {
        let a = scratch_operand(gpu, m, k, self.fmt_a)?;
        let b = scratch_operand(gpu, n, k, self.fmt_b)?;
        let c = GpuBuffer::<f32>::zeros(gpu, "tune c", m * n)?;
        let iters = ((2e8 / (2.0 * (m * n * k) as f64)) as u32).clamp(1, 10);
        let r = pick_fastest(&Tile::ALL, |t| {
            gpu_seconds(gpu, iters, 2, |e| self.encode_with(gpu, e, t, &a, &b, &Epilogue::default(), &c))
        })?;
        self.cache.insert(m, n, k, r.0);
        Ok(r)
    }

    /// Records with an explicit tile.
    pub fn encode_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        self.encode_batched_with(gpu, enc, tile, a, b, 1, epi, c)
    }

    /// Records `batches` products at once (see [`crate::kernels::gemm_int::GemmInt::encode_batched`]
    /// for the layout), with the tuned (or heuristic) tile for one product's shape.
    pub fn encode_batched(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let (m, n) = (a.layout.rows as usize / batches.max(1), b.layout.rows as usize / batches.max(1));
        if let Some(lanes) = &self.lanes {
            let p = self.checked_params(a, b, epi, Tile::T32, batches, c)?;
            return lanes.record(gpu, enc, p, &self.dummies, a, b, epi, c);
        }
        if self.runs_coop(a, b) {
            return self.encode_coop_batched(gpu, enc, a, b, batches, epi, c);
        }
        let tile = self.cache.choose(m, n, a.layout.cols as usize, &Tile::ALL);
        self.encode_batched_with(gpu, enc, tile, a, b, batches, epi, c)
    }

    /// The params of these operands' product for `tile`, after every check of the operands,
    /// the epilogue and `c`.
    fn checked_params(
        &self,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        tile: Tile,
        batches: usize,
        c: &GpuBuffer<f32>,
    ) -> Result<GemmParams> {
        if a.layout.format != self.fmt_a || b.layout.format != self.fmt_b {
            return Err(Error::InvalidArgument(format!(
                "gemm_fp8 built for {} × {}, got {} × {}",
                self.fmt_a, self.fmt_b, a.layout.format, b.layout.format
            )));
        }
        if a.samples != 1 {
            return Err(Error::InvalidArgument("gemm_fp8: SMP samples are supported by gemm_int only".into()));
        }
        checked_packed_params("gemm_fp8", a, b, epi.flags(), epi, tile, batches, c.len())
    }

    /// [`GemmFp8::encode_batched`] with an explicit tile.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_batched_with(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        tile: Tile,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        batches: usize,
        epi: &Epilogue,
        c: &GpuBuffer<f32>,
    ) -> Result<()> {
        let p = self.checked_params(a, b, epi, tile, batches, c)?;
        let pipe = self.pipelines.get("gemm_fp8", tile)?;
        encode_split(gpu, enc, &self.dummies.sum, p, c, |enc, target, p| {
            dispatch_packed(gpu, enc, "gemm_fp8", &self.bgl, pipe, &self.dummies, &p, a, b, epi, target)
        })
    }
}

/// An operand for [`GemmFp8`]'s check of its cooperative kernel: `rows × k` codes of `format`
/// drawn at random (stream `seed`), non-finite ones replaced by finite ones (E4M3's NaN by 448,
/// E5M2's top exponent by 0), and scales drawn from [0.5, 2).
fn check_operand(gpu: &Gpu, rows: usize, k: usize, format: Format, seed: u32) -> Result<QuantizedTensor> {
    use crate::rng::draw;
    let layout = crate::scheme::QuantLayout::new(rows, k, format, crate::scheme::Granularity::native(format))?;
    let finite = |c: u32| match format {
        Format::Fp8E5M2 if c & 0x7c == 0x7c => c & 0x83,
        Format::Fp8E5M2 => c,
        _ if c & 0x7f == 0x7f => c ^ 1,
        _ => c,
    };
    let codes: Vec<u32> = (0..layout.words() as u32)
        .map(|i| {
            let w = draw(0xc0de ^ seed, i);
            (0..4).map(|j| finite((w >> (8 * j)) & 0xff) << (8 * j)).sum()
        })
        .collect();
    let scales: Vec<f32> =
        (0..layout.n_groups).map(|i| 0.5 + 1.5 * (draw(0x5ca1e ^ seed, i) >> 8) as f32 / (1 << 24) as f32).collect();
    Ok(QuantizedTensor {
        codes: GpuBuffer::from_slice(gpu, "coop check codes", &codes)?,
        scales: GpuBuffer::from_slice(gpu, "coop check scales", &scales)?,
        layout,
        samples: 1,
    })
}
