//! `dequantize`: packed codes and group scales back to f32, `out = ftz(decode(code) · s)`.
//!
//! Layout: one thread per packed word, a scalar store per code; where the rows are whole words
//! ([`Dequantize::vectorised`]) each word's codes are stored as vec4s, a thread per word on a GPU
//! and in the elementwise kernels' teams on a CPU adapter ([`VecPath`]). Bindings: 0
//! `QuantParams`, 1 codes (read u32), 2 scales (read f32), 3 out (read-write f32). Reference:
//! [`crate::reference::dequantize`].

use super::{check_len, dispatch, format_constant, layouts, pipeline, uniform, QuantParams, Slot, VecPath};
use crate::format::Format;
use crate::scheme::{QuantLayout, Rounding};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};

/// The dequantize kernel for one format.
pub struct Dequantize {
    format: Format,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Entry `main_v4` or `main_teams`, as `path` says: the layouts [`Dequantize::vectorised`]
    /// accepts.
    v4: wgpu::ComputePipeline,
    path: VecPath,
}

impl Dequantize {
    /// Builds the pipelines for `format`, the vec4 one as the adapter runs best
    /// ([`VecPath::for_adapter`]).
    pub fn new(gpu: &Gpu, format: Format) -> Result<Self> {
        Self::with_path(gpu, format, VecPath::for_adapter(gpu))
    }

    /// Builds the pipelines for `format` with the vectorised layouts taken by `path`.
    pub fn with_path(gpu: &Gpu, format: Format, path: VecPath) -> Result<Self> {
        let (bgl, pl) = layouts(gpu, "dequantize", &[Slot::Uniform, Slot::Read, Slot::Read, Slot::Write]);
        let (entry, path_constants) = path.entry("main_v4");
        let mut constants = format_constant(format).to_vec();
        constants.extend_from_slice(path_constants);
        Ok(Dequantize {
            format,
            pipeline: pipeline(gpu, "dequantize", "main", &pl, &format_constant(format))?,
            v4: pipeline(gpu, "dequantize", entry, &pl, &constants)?,
            path,
            bgl,
        })
    }

    /// The path the vectorised layouts take.
    pub fn path(&self) -> VecPath {
        self.path
    }

    /// Whether `l` is stored by vec4s: where its rows are whole words (so word `w` holds values
    /// `w·per_word ..`; every format's words hold 4, 8 or 16 codes). Each word then lies in one
    /// scale group, since [`QuantLayout`] takes only blocks of a power of two that hold whole
    /// words. Returned with it, the shift that finds a word's group within its row (31 for one
    /// group per row or per tensor).
    pub fn vectorised(l: &QuantLayout) -> Option<u32> {
        let per_word = l.per_word();
        if !per_word.is_multiple_of(4) || !l.cols.is_multiple_of(per_word) {
            return None;
        }
        match l.block_div {
            u32::MAX => Some(31),
            b => {
                debug_assert!(b.is_power_of_two() && b.is_multiple_of(per_word), "{l:?}");
                Some(b.trailing_zeros())
            }
        }
    }

    /// Records `out ← dequantize(codes, scales)`.
    pub fn encode(
        &self,
        gpu: &Gpu,
        enc: &mut impl crate::Record,
        codes: &GpuBuffer<u32>,
        scales: &GpuBuffer<f32>,
        l: &QuantLayout,
        out: &GpuBuffer<f32>,
    ) -> Result<()> {
        super::check_built_for("dequantize", self.format, l)?;
        check_len("dequantize", "codes", codes.len(), l.words())?;
        check_len("dequantize", "scales", scales.len(), l.n_groups as usize)?;
        check_len("dequantize", "out", out.len(), (l.rows * l.cols) as usize)?;
        let mut p = QuantParams::row_tiles(l, Rounding::Nearest);
        let shift = Self::vectorised(l);
        if let Some(s) = shift {
            p.aux[0] = s;
        }
        let params = uniform(gpu, "dequantize params", &p);
        let (pipeline, workgroups) = match shift {
            None => (&self.pipeline, p.total_tiles),
            // The path's workgroups, a word a thread where the copy takes a vec4.
            Some(_) => (&self.v4, self.path.workgroups(l.rows * l.words_per_row)),
        };
        dispatch(
            gpu,
            enc,
            "dequantize",
            pipeline,
            &self.bgl,
            &[&params, codes.buffer(), scales.buffer(), out.buffer()],
            workgroups,
        )
    }
}
