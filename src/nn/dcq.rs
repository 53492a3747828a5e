//! Divide-and-conquer quantization (DCQ, Elthakeb et al., ICML 2020): a trained full-precision
//! teacher is cut into sections; each quantized student section learns, on its own, to map the
//! teacher's input of that section to the teacher's output of it (squared distance per sample,
//! [`Trainer::step_features`]); the sections are then stitched into one student, which is
//! fine-tuned briefly on the task.
//!
//! Here a section is a range of the model's layers. The student sections start from the
//! teacher's weights and train under the student's scheme, each layer quantized as it would be
//! in the whole student (so a first/last-layer policy applies to the model's first and last
//! layers); the teacher runs in fp32.

use super::model::ModelSpec;
use super::scheme::TrainScheme;
use super::trainer::{cosine_lr, OptimConfig, Parameter, Trainer};
use crate::data::Dataset;
use crate::{Error, Gpu, Result};

/// The layers `start..end` of `spec` as a model of their own (its input is the output of layer
/// `start − 1`).
pub fn section_spec(spec: &ModelSpec, start: usize, end: usize) -> Result<ModelSpec> {
    if start >= end || end > spec.layers.len() {
        return Err(Error::InvalidArgument(format!(
            "section {start}..{end} of a model of {} layers",
            spec.layers.len()
        )));
    }
    let shapes = spec.layer_shapes()?;
    let input = if start == 0 { spec.input } else { shapes[start - 1] };
    Ok(ModelSpec { name: format!("{}[{start}..{end}]", spec.name), input, layers: spec.layers[start..end].to_vec() })
}

/// Cuts `spec` into `n` sections of about equal numbers of layers with weights, each ending just
/// before a GEMM layer or a residual block (so a section keeps a layer's batch norm and pooling
/// with it, and a block whole). Returns the layer ranges.
pub fn split(spec: &ModelSpec, n: usize) -> Result<Vec<(usize, usize)>> {
    let gemms: Vec<usize> =
        spec.layers.iter().enumerate().filter(|(_, l)| l.gemm_count() > 0).map(|(i, _)| i).collect();
    if n == 0 || n > gemms.len() {
        return Err(Error::InvalidArgument(format!("{n} sections of a model with {} GEMM layers", gemms.len())));
    }
    let mut cuts = vec![0];
    for s in 1..n {
        cuts.push(gemms[s * gemms.len() / n]);
    }
    cuts.push(spec.layers.len());
    Ok(cuts.windows(2).map(|w| (w[0], w[1])).collect())
}

/// The parameters of layers `start + from .. end + from` of `params`, renumbered so that layer
/// `i` becomes `i − from + to`.
fn rename(params: &[Parameter], from: usize, to: usize, start: usize, end: usize) -> Vec<Parameter> {
    params
        .iter()
        .filter_map(|(name, shape, v)| {
            let rest = name.strip_prefix("layers.")?;
            let (idx, field) = rest.split_once('.')?;
            let i: usize = idx.parse().ok()?;
            if i < start + from || i >= end + from {
                return None;
            }
            Some((format!("layers.{}.{field}", i - from + to), shape.clone(), v.clone()))
        })
        .collect()
}

/// What [`train_sections`] reports per section.
#[derive(Clone, Debug, PartialEq)]
pub struct SectionReport {
    /// The layer range.
    pub layers: (usize, usize),
    /// Mean squared error per sample over the first and the last tenth of its steps.
    pub first_mse: f64,
    /// See `first_mse`.
    pub last_mse: f64,
}

/// Trains a student section for every range in `sections` to reproduce the fp32 `teacher`
/// (`teacher_params` from [`Trainer::parameters`]) on `data`, `steps` steps each (batches in the
/// seeded order of `data`, cosine learning rate from `opt.lr`), under `scheme` as the whole
/// student would apply it, starting from the teacher's weights when `from_teacher` (else from
/// the seeded initialization). `progress(section, step, loss)` follows every step. Returns the
/// stitched student's parameters (named for the whole model) and a report per section.
#[allow(clippy::too_many_arguments)]
pub fn train_sections(
    gpu: &Gpu,
    teacher: &ModelSpec,
    teacher_params: &[Parameter],
    scheme: &TrainScheme,
    sections: &[(usize, usize)],
    data: &Dataset,
    steps: usize,
    opt: OptimConfig,
    seed: u32,
    from_teacher: bool,
    mut progress: impl FnMut(usize, usize, f32),
) -> Result<(Vec<Parameter>, Vec<SectionReport>)> {
    if data.len() < opt.batch {
        return Err(Error::InvalidArgument(format!("{} samples is less than one batch of {}", data.len(), opt.batch)));
    }
    let fp32 = TrainScheme::preset("fp32")?;
    let n_train: usize = teacher.layers.iter().map(|l| l.gemm_count()).sum();
    let prefix = |end: usize| -> Result<Option<Trainer>> {
        if end == 0 {
            return Ok(None);
        }
        let mut t = Trainer::new(gpu, section_spec(teacher, 0, end)?, fp32.clone(), opt, seed)?;
        for (n, _, v) in rename(teacher_params, 0, 0, 0, end) {
            t.set_parameter(&n, &v)?;
        }
        Ok(Some(t))
    };
    let mut stitched = Vec::new();
    let mut reports = Vec::new();
    for (si, &(start, end)) in sections.iter().enumerate() {
        let (t_in, t_out) = (prefix(start)?, prefix(end)?.expect("a section is not empty"));
        // The section's scheme: each of its GEMM layers as the whole student quantizes it.
        let first: usize = teacher.layers[..start].iter().map(|l| l.gemm_count()).sum();
        let spec = section_spec(teacher, start, end)?;
        let mut sec_scheme = TrainScheme { keep_sensitive: false, overrides: Vec::new(), ..scheme.clone() };
        let k: usize = spec.layers.iter().map(|l| l.gemm_count()).sum();
        for j in 0..k {
            sec_scheme = sec_scheme.with_layer(j, scheme.layer(first + j, n_train))?;
        }
        let mut student = Trainer::new(gpu, spec, sec_scheme, opt, seed)?;
        let width = student.output_len().max(1);
        if from_teacher {
            for (n, _, v) in rename(teacher_params, start, 0, 0, end - start) {
                student.set_parameter(&n, &v)?;
            }
        }
        let mut losses = Vec::with_capacity(steps);
        let mut order = data.order(seed, si as u32);
        let mut at = 0;
        for step in 0..steps {
            if at + opt.batch > order.len() {
                order = data.order(seed, (si + sections.len() * (step + 1)) as u32);
                at = 0;
            }
            let (x, _) = data.gather(&order[at..at + opt.batch])?;
            at += opt.batch;
            let input = match &t_in {
                Some(t) => t.logits(&x, opt.batch)?,
                None => x.clone(),
            };
            let target = t_out.logits(&x, opt.batch)?;
            // ‖f_s − f_t‖² per sample (gradients at a classification step's scale for any
            // section width); reported per value, as a mean squared error.
            let loss = student.step_features(&input, &target, cosine_lr(opt.lr, step, steps))?;
            let loss = loss / width as f32;
            losses.push(loss as f64);
            progress(si, step, loss);
        }
        let tenth = (steps / 10).max(1);
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
        reports.push(SectionReport {
            layers: (start, end),
            first_mse: mean(&losses[..tenth.min(losses.len())]),
            last_mse: mean(&losses[losses.len().saturating_sub(tenth)..]),
        });
        stitched.extend(rename(&student.parameters()?, 0, start, 0, end - start));
    }
    Ok((stitched, reports))
}
