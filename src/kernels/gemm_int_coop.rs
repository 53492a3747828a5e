//! `gemm_int_coop`: [`super::gemm_int`]'s products on the cooperative-matrix unit (tensor cores),
//! bit for bit with gemm_int's `main` tiles. Each K step's codes are decoded to f16 in workgroup
//! memory (every lane value of gemm_int's formats is an integer of at most 128, exact in f16) and
//! multiplied as f16 × f16 → f32 cooperative matrices; every 1,024 elements of K and at every
//! scale chunk's end the unit's sums (integers of at most 2²⁴, exact in f32 whatever order the
//! unit adds in) go into i32 sums, folded with the scales as gemm_int folds them. 64×64 output
//! tiles; 8×8×8 matrices (lavapipe from Mesa 25.1 on) or 16×16×16 (NVIDIA), whichever the
//! adapter offers ([`GemmIntCoop::size`]). One sample of A; scale chunks over all of K or
//! multiples of the matrix size ([`GemmIntCoop::fits`]). [`super::gemm_int::GemmInt`] runs it
//! where the adapter has it and the lanes kernel does not apply, and
//! [`super::gemm_int::GemmInt::encode_coop`] asks for it by name.
//! Bindings: as gemm_int's. Reference: [`crate::reference::gemm_int_coop`].

use super::gemm::{dispatch_packed, Dummies, Epilogue, GemmParams, PACKED_SLOTS};
use super::gemm_int::check_int_formats;
use super::{layouts, pipeline};
use crate::format::Format;
use crate::quant::QuantizedTensor;
use crate::{Error, Gpu, Result};

/// The output tile's edge (`TILE` in the shader).
pub const TILE: u32 = 64;

/// Values of one accumulator a lane may hold at most (`PER_MAX` in the shader).
const PER_MAX: u32 = 8;

/// The cooperative integer GEMM for one pair of operand formats.
pub struct GemmIntCoop(CoopPipeline);

/// A cooperative GEMM's pipeline (`gemm_int_coop`'s or `gemm_fp8_coop`'s: the loop of
/// `shaders/common/gemm_coop.wgsl` over the kernel's decode), with its matrix size.
pub(crate) struct CoopPipeline {
    name: &'static str,
    size: u32,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

/// A cooperative GEMM (`name`) as its SIMD GEMM holds it: where the adapter has the unit and
/// `LOWBIT_COOP` lets the GEMMs use it, what `build` makes, else `None`; and why not where the
/// adapter has the unit (`LOWBIT_COOP=0`, or `build`'s error: a refusal, not a failure, so the
/// SIMD kernels run its products). `LOWBIT_COOP` is read on every adapter, so a value it does not
/// take is an error anywhere.
pub(crate) fn build_coop<K>(
    gpu: &Gpu,
    name: &str,
    build: impl FnOnce() -> Result<K>,
) -> Result<(Option<K>, Option<String>)> {
    let allowed = GemmIntCoop::allowed()?;
    if !GemmIntCoop::available(gpu) {
        return Ok((None, None));
    }
    if !allowed {
        return Ok((None, Some(format!("{name} is turned off (LOWBIT_COOP=0)"))));
    }
    Ok(match build() {
        Ok(k) => (Some(k), None),
        Err(e) => (None, Some(format!("{name} could not be built on {}: {e}", gpu.report().name))),
    })
}

/// The pipeline of a cooperative GEMM (`name`) its SIMD GEMM holds as `coop`, or the error that
/// says why there is none (its `refusal`, else the adapter's lack of the unit).
pub(crate) fn coop_or_error<'a>(
    gpu: &Gpu,
    name: &str,
    coop: Option<&'a CoopPipeline>,
    refusal: Option<&str>,
) -> Result<&'a CoopPipeline> {
    coop.ok_or_else(|| match refusal {
        Some(why) => Error::InvalidArgument(why.to_string()),
        None => GemmIntCoop::unavailable(gpu, name),
    })
}

impl CoopPipeline {
    /// Builds kernel `name`'s pipeline for A in `fmt_a` and B in `fmt_b` (formats the caller
    /// checked), or says why this adapter cannot run it ([`GemmIntCoop::size`]).
    pub(crate) fn new(gpu: &Gpu, name: &'static str, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        let Some(size) = GemmIntCoop::size(gpu) else { return Err(GemmIntCoop::unavailable(gpu, name)) };
        let sg = gpu.report().subgroup_sizes.map_or(0, |s| s.0);
        let (bgl, pl) = layouts(gpu, name, PACKED_SLOTS);
        let constants = [
            ("FMT_A", fmt_a.id() as f64),
            ("FMT_B", fmt_b.id() as f64),
            ("SG", sg as f64),
            ("WG", ((TILE / (2 * size)).pow(2) * sg) as f64),
        ];
        let entry = if size == 16 { "main16" } else { "main8" };
        Ok(CoopPipeline { name, size, bgl, pipeline: pipeline(gpu, name, entry, &pl, &constants)? })
    }

    /// The matrix size this pipeline runs.
    pub(crate) fn matrix_size(&self) -> u32 {
        self.size
    }

    /// `Ok` if this pipeline takes these operands ([`GemmIntCoop::fits`]), else the error.
    pub(crate) fn check(&self, a: &QuantizedTensor, b: &QuantizedTensor) -> Result<()> {
        if GemmIntCoop::fits(self.size, a, b) {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "{} takes one sample of A and scale chunks over all of K or in multiples of {}, not {} samples with \
             chunks of {} over {}",
            self.name,
            self.size,
            a.samples,
            a.layout.shared_chunk(&b.layout),
            a.layout.cols
        )))
    }

    /// Records the product of `p` (the kernel's params for these operands with 64×64 tiles): the
    /// callers have checked the operands, [`CoopPipeline::check`] included.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        p: GemmParams,
        dummies: &Dummies,
        a: &QuantizedTensor,
        b: &QuantizedTensor,
        epi: &Epilogue,
        c: &wgpu::Buffer,
    ) -> Result<()> {
        dispatch_packed(gpu, enc, self.name, &self.bgl, &self.pipeline, dummies, &p, a, b, epi, c)
    }
}

impl GemmIntCoop {
    /// The matrix size this adapter runs the kernel with: 16 where it offers 16×16×16 f16 → f32
    /// cooperative matrices, else 8 where it offers 8×8×8, each with subgroups of one size `sg`
    /// that holds an accumulator in at most 8 values a lane (`size² / sg ≤ 8`) and a workgroup of
    /// `(64 / 2·size)² · sg` invocations within the adapter's limit; `None` elsewhere.
    pub fn size(gpu: &Gpu) -> Option<u32> {
        let (lo, hi) = gpu.report().subgroup_sizes?;
        if lo != hi || lo == 0 {
            return None;
        }
        [16, 8].into_iter().find(|&s| {
            let invocations = (TILE / (2 * s)).pow(2) * lo;
            gpu.has_coop_f16(s)
                && s * s / lo <= PER_MAX
                && (s * s).is_multiple_of(lo)
                && invocations <= gpu.limits().max_compute_invocations_per_workgroup
                && invocations <= gpu.limits().max_compute_workgroup_size_x
        })
    }

    /// The error that says why `gpu` cannot run the cooperative GEMM `op` (this one or
    /// `gemm_fp8_coop`, which share the loop and so its needs).
    pub(crate) fn unavailable(gpu: &Gpu, op: &str) -> Error {
        let r = gpu.report();
        Error::InvalidArgument(format!(
            "{op} needs f16 × f16 → f32 cooperative matrices of 8×8×8 or 16×16×16 and subgroups of one size; \
             {} offers {} with subgroups of {:?} (the SIMD GEMMs run there)",
            r.name,
            if r.cooperative_matrix.is_empty() { "none".to_string() } else { r.cooperative_matrix.join(", ") },
            r.subgroup_sizes
        ))
    }

    /// Whether `LOWBIT_COOP` lets the GEMMs use the unit: unset, empty, `1`, `on`, `auto`, `yes`
    /// or `true` (any case) yes, `0`, `off`, `no` or `false` no (the SIMD kernels then run every
    /// product, e.g. to time a step both ways on one GPU); an error naming the accepted values for
    /// anything else.
    pub fn allowed() -> Result<bool> {
        crate::gpu::env_value("LOWBIT_COOP", coop_error)?.map_or(Ok(true), |v| Self::parse_allowed(&v))
    }

    /// A `LOWBIT_COOP` value ([`GemmIntCoop::allowed`]).
    fn parse_allowed(v: &str) -> Result<bool> {
        crate::gpu::auto_switch(v, true).ok_or_else(|| coop_error(v))
    }

    /// Whether `gpu` can run this kernel ([`GemmIntCoop::size`]).
    pub fn available(gpu: &Gpu) -> bool {
        Self::size(gpu).is_some()
    }

    /// Whether it computes these operands' product with `size`×`size` matrices: one sample of A,
    /// and one scale chunk over all of K or chunks that are whole multiples of `size`.
    pub fn fits(size: u32, a: &QuantizedTensor, b: &QuantizedTensor) -> bool {
        let chunk = a.layout.shared_chunk(&b.layout);
        a.samples == 1 && (chunk >= a.layout.cols || chunk.is_multiple_of(size))
    }

    /// Builds the pipeline for A in `fmt_a` and B in `fmt_b` (any of gemm_int's
    /// [`INT_FORMATS`](super::gemm_int::INT_FORMATS)), or says why this adapter cannot run it.
    pub fn new(gpu: &Gpu, fmt_a: Format, fmt_b: Format) -> Result<Self> {
        check_int_formats("gemm_int_coop", [fmt_a, fmt_b])?;
        Ok(GemmIntCoop(CoopPipeline::new(gpu, "gemm_int_coop", fmt_a, fmt_b)?))
    }

    /// The matrix size this pipeline runs.
    pub fn matrix_size(&self) -> u32 {
        self.0.matrix_size()
    }

    /// The pipeline, which checks and records the products.
    pub(crate) fn pipeline(&self) -> &CoopPipeline {
        &self.0
    }
}

fn coop_error(v: &str) -> Error {
    Error::InvalidArgument(format!("LOWBIT_COOP={v}: expected on (1, auto) or off (0)"))
}

#[cfg(test)]
mod tests {
    use super::GemmIntCoop;

    #[test]
    fn coop_switch_parses() {
        for on in ["", "1", "ON", " auto "] {
            assert!(GemmIntCoop::parse_allowed(on).unwrap(), "{on}");
        }
        for off in ["0", "Off", "no", "FALSE"] {
            assert!(!GemmIntCoop::parse_allowed(off).unwrap(), "{off}");
        }
        for bad in ["maybe", "2", "-1"] {
            let err = GemmIntCoop::parse_allowed(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("LOWBIT_COOP={bad}")) && err.contains("off (0)"), "{err}");
        }
    }
}
