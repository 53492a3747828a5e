//! `format_check`: device-side test entry points for the shared device functions (`encode`,
//! `decode`, `recip`, `pow2_recip`, `rng`), so the WGSL mirrors can be checked against the host
//! spec code by code. Bindings: 0 params `{n, key, stochastic}`, 1 x (read f32), 2 codes
//! (read-write u32), 3 vals (read-write f32). Reference: [`crate::reference::format_check`].

use super::{dispatch, format_constant, layouts, pipeline, uniform, Slot, WG};
use crate::format::Format;
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Copy, Clone, Pod, Zeroable)]
struct CheckParams {
    n: u32,
    key: u32,
    stochastic: u32,
    pad: u32,
}
const _: () = assert!(std::mem::size_of::<CheckParams>() == 16);

/// The check kernels for one format.
pub struct FormatCheck {
    bgl: wgpu::BindGroupLayout,
    encode: wgpu::ComputePipeline,
    decode: wgpu::ComputePipeline,
    recip: wgpu::ComputePipeline,
    pow2_recip: wgpu::ComputePipeline,
    rng: wgpu::ComputePipeline,
}

impl FormatCheck {
    /// Builds the five pipelines for `format`.
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "format_check", &[Slot::Uniform, Slot::Read, Slot::Write, Slot::Write]);
        let c = format_constant(format);
        let p = |e| pipeline(gpu, "format_check", e, &pl, &c);
        Ok(FormatCheck {
            encode: p("encode")?,
            decode: p("decode")?,
            recip: p("recip")?,
            pow2_recip: p("pow2_recip")?,
            rng: p("rng")?,
            bgl,
        })
    }

    fn run(
        &self,
        gpu: &Gpu,
        which: &wgpu::ComputePipeline,
        x: &[f32],
        codes: &[u32],
        n: usize,
        key: u32,
        stochastic: bool,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        let xb = GpuBuffer::from_slice(gpu, "check x", if x.is_empty() { &[0.0] } else { x })?;
        let cb = if codes.is_empty() {
            GpuBuffer::<u32>::zeros(gpu, "check codes", n)?
        } else {
            GpuBuffer::from_slice(gpu, "check codes", codes)?
        };
        let vb = GpuBuffer::<f32>::zeros(gpu, "check vals", n)?;
        let params =
            uniform(gpu, "check params", &CheckParams { n: n as u32, key, stochastic: stochastic as u32, pad: 0 });
        let buffers = [&params, xb.buffer(), cb.buffer(), vb.buffer()];
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        dispatch(gpu, &mut enc, "format_check", which, &self.bgl, &buffers, (n as u32).div_ceil(WG))?;
        gpu.submit([enc.finish()]);
        Ok((cb.read(gpu)?, vb.read(gpu)?))
    }

    /// Unscaled device encode of every element.
    pub fn encode(&self, gpu: &Gpu, x: &[f32], stochastic: bool, key: u32) -> Result<Vec<u32>> {
        Ok(self.run(gpu, &self.encode, x, &[], x.len(), key, stochastic)?.0)
    }

    /// Device decode of every code.
    pub fn decode(&self, gpu: &Gpu, codes: &[u32]) -> Result<Vec<f32>> {
        Ok(self.run(gpu, &self.decode, &[], codes, codes.len(), 0, false)?.1)
    }

    /// Device `recip_rne` of every element.
    pub fn recip(&self, gpu: &Gpu, x: &[f32]) -> Result<Vec<f32>> {
        Ok(self.run(gpu, &self.recip, x, &[], x.len(), 0, false)?.1)
    }

    /// Device `recip_pow2` of every element (entry `pow2_recip`: WGSL's one namespace keeps the
    /// helper's name): the block-scaled formats' inverse of a scale that is a power of two, which
    /// must be `recip_rne`'s value at every positive normal power of two.
    pub fn pow2_recip(&self, gpu: &Gpu, x: &[f32]) -> Result<Vec<f32>> {
        Ok(self.run(gpu, &self.pow2_recip, x, &[], x.len(), 0, false)?.1)
    }

    /// The first `n` device draws of `key`.
    pub fn rng(&self, gpu: &Gpu, key: u32, n: usize) -> Result<Vec<u32>> {
        Ok(self.run(gpu, &self.rng, &[], &[], n, key, false)?.0)
    }
}
