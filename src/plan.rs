//! Step plans: record a sequence of kernels once, replay it every step with nothing created.
//!
//! A [`Tape`] is a [`Record`]: launchers record into it exactly as into a command encoder, but
//! nothing reaches the GPU. It keeps, in order, every dispatch (pipeline, bind group layout and
//! the buffers to bind), copy and clear, and it hands out scratch storage as *placeholders*:
//! tiny buffers whose identity stands for storage assigned later. [`Tape::finish`] then
//!
//! 1. computes each scratch value's lifetime, from the first to the last command that uses it;
//! 2. packs the values into slots so that values whose lifetimes do not overlap share one (greedy
//!    interval colouring in order of first use, best fit by size), and the slots into buffers of
//!    an [`Arena`] that several plans share (they run one after the other on one queue, and no
//!    scratch value lives from one step into the next);
//! 3. creates every bind group once, with the placeholders replaced by arena buffers;
//! 4. moves every clear that begins a scratch value's life (an accumulator's zeroing) to the
//!    start of the plan, so the clears do not split the step into compute passes (such a value
//!    then lives from the start and shares storage only with values after it).
//!
//! The [`Plan`] it returns records a step with set-pipeline, set-bind-group and dispatch only
//! ([`Plan::record`]); what changes per step is one [`StepState`] uniform ([`Plan::set_step`]).
//! This is how tinygrad's `TinyJit` and CUDA graphs replay a captured step, and how llm.c lays
//! out its activations: one allocation sized from a table, no allocation inside a step.
//!
//! Rules for what is recorded into a tape: buffers that must hold data across steps or be read
//! by the host (parameters, inputs, outputs read back) are ordinary buffers made outside it; a
//! scratch value must be written within the step before it is read (a kernel that accumulates
//! into one records a clear first), since its storage holds other values before and after. A
//! plan built with [`PlanOptions::poison`] fills every scratch value with NaN bits just before its
//! first use, so a kernel that breaks the rule shows in a test.

// wgpu's handles hash and compare by their resource id, which never changes: keying maps by
// buffers and layouts (identity) is sound despite their interior mutability.
#![allow(clippy::mutable_key_type)]

use crate::record::{Dispatch, Record, Recorder, StepState};
use crate::tensor::GpuBuffer;
use crate::{Gpu, Result};
use bytemuck::Pod;
use std::collections::HashMap;

/// Buffers that scratch values of several plans share (see the module docs). All are storage
/// buffers with copy usages; a plan takes, for each of its slots, the smallest free buffer that
/// fits and creates one where none does.
#[derive(Default)]
pub struct Arena {
    buffers: Vec<wgpu::Buffer>,
}

impl Arena {
    /// An empty arena.
    pub fn new() -> Self {
        Arena::default()
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.buffers.iter().map(|b| b.size()).sum()
    }

    /// Buffers held.
    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    /// True when it holds no buffers.
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// One buffer per slot size, distinct, each at least as large: best fit among the held
    /// buffers, new ones where none fits.
    fn take(&mut self, gpu: &Gpu, slots: &[u64]) -> Vec<wgpu::Buffer> {
        let mut order: Vec<usize> = (0..slots.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(slots[i]));
        let mut used = vec![false; self.buffers.len()];
        let mut out: Vec<Option<wgpu::Buffer>> = vec![None; slots.len()];
        for i in order {
            let need = slots[i];
            let fit = (0..self.buffers.len())
                .filter(|&j| !used[j] && self.buffers[j].size() >= need)
                .min_by_key(|&j| self.buffers[j].size());
            let j = match fit {
                Some(j) => j,
                None => {
                    self.buffers.push(gpu.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("lowbit plan arena"),
                        size: need,
                        usage: crate::tensor::USAGE,
                        mapped_at_creation: false,
                    }));
                    used.push(false);
                    self.buffers.len() - 1
                }
            };
            used[j] = true;
            out[i] = Some(self.buffers[j].clone());
        }
        out.into_iter().map(|b| b.expect("every slot got a buffer")).collect()
    }
}

/// How [`Tape::finish`] builds a plan.
#[derive(Copy, Clone, Debug, Default)]
pub struct PlanOptions {
    /// Fill every scratch value with all-ones bits (NaN as f32) just before its first use, so a
    /// kernel that reads scratch storage it did not write shows (for tests; costs a copy per
    /// value per step).
    pub poison: bool,
    /// Give every scratch value storage of its own instead of sharing (for comparisons).
    pub no_sharing: bool,
    /// Record the chains of separate kernels where the adapter would run one kernel that fuses
    /// them (today: a convolution's input-gradient product and col2im, see
    /// [`crate::kernels::gemm_int_col2im`], [`crate::kernels::gemm_f32_col2im`] and
    /// [`crate::kernels::gemm_fp8_col2im`]; the block-scaled presets' rotated weight-gradient
    /// operands with their bias gradient, [`crate::kernels::hadamard_quantize_transpose`]; an
    /// NVFP4 weight's W and Wᵀ, [`crate::quant::Quantizer::quantize_reducing_amax_both`]), so a
    /// test can compare the two: they give the same bits, the fused step with fewer launches and
    /// less scratch.
    pub unfused: bool,
}

/// What a plan holds and records, in counts that do not depend on the adapter's speed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanStats {
    /// Dispatches per replay.
    pub dispatches: usize,
    /// Copies per replay.
    pub copies: usize,
    /// Clears per replay.
    pub clears: usize,
    /// Bind groups the plan made (once).
    pub bind_groups: usize,
    /// Scratch values recorded.
    pub scratch_values: usize,
    /// Their bytes if each had storage of its own.
    pub scratch_bytes: u64,
    /// The bytes of the slots they were packed into (what sharing by lifetime needs).
    pub slot_bytes: u64,
}

struct Transient {
    bytes: u64,
    first: Option<usize>,
    last: usize,
}

enum Cmd {
    Dispatch { name: String, pipeline: wgpu::ComputePipeline, group: usize, x: u32, y: u32 },
    Copy { src: wgpu::Buffer, src_offset: u64, dst: wgpu::Buffer, dst_offset: u64, size: u64 },
    Clear { buffer: wgpu::Buffer },
}

struct GroupDesc {
    name: String,
    layout: wgpu::BindGroupLayout,
    buffers: Vec<wgpu::Buffer>,
}

/// A recording target that keeps what is recorded, for [`Tape::finish`] (see the module docs).
pub struct Tape {
    gpu: Gpu,
    step: wgpu::Buffer,
    status: wgpu::Buffer,
    cmds: Vec<Cmd>,
    groups: Vec<GroupDesc>,
    group_index: HashMap<(wgpu::BindGroupLayout, Vec<wgpu::Buffer>), usize>,
    /// Scratch placeholders, in the order they were handed out.
    order: Vec<wgpu::Buffer>,
    transients: HashMap<wgpu::Buffer, Transient>,
}

impl Tape {
    /// An empty tape on `gpu`, with the [`StepState`] uniform its plan will bind and a clear
    /// status of its own ([`Record::status`]).
    pub fn new(gpu: &Gpu) -> Self {
        let status = gpu.create_buffer_init(
            "lowbit plan status",
            bytemuck::cast_slice(&crate::kernels::finite::CLEAR),
            crate::tensor::USAGE,
        );
        Self::with_status(gpu, &status)
    }

    /// An empty tape whose state-updating kernels read `status` (a `[flag, first step]` storage
    /// buffer that this plan's checks, or others', write).
    pub fn with_status(gpu: &Gpu, status: &wgpu::Buffer) -> Self {
        let step = gpu.create_buffer_init(
            "lowbit plan step state",
            bytemuck::bytes_of(&StepState::UNIT),
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        Tape {
            gpu: gpu.clone(),
            step,
            status: status.clone(),
            cmds: Vec::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            order: Vec::new(),
            transients: HashMap::new(),
        }
    }

    /// Commands recorded so far.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    fn touch(&mut self, b: &wgpu::Buffer) {
        let at = self.cmds.len();
        if let Some(t) = self.transients.get_mut(b) {
            t.first.get_or_insert(at);
            t.last = at;
        }
    }

    /// Builds the plan: lifetimes, slots, arena buffers, bind groups (see the module docs).
    pub fn finish(self, arena: &mut Arena) -> Result<Plan> {
        self.finish_with(arena, PlanOptions::default())
    }

    /// [`Tape::finish`] with options.
    pub fn finish_with(self, arena: &mut Arena, opts: PlanOptions) -> Result<Plan> {
        let gpu = self.gpu.clone();
        // Clears that begin a scratch value's life (an accumulator's zeroing, such as absmax's)
        // move to the start of the plan, where they all go before the first compute pass: a clear
        // between dispatches ends the pass, and each pass costs the GPU and the driver time (see
        // `crate::record`). The value then lives from the plan's start, so its storage is shared
        // only with values that come after it.
        let hoisted: Vec<usize> = (0..self.cmds.len())
            .filter(|&i| match &self.cmds[i] {
                Cmd::Clear { buffer } => self.transients.get(buffer).is_some_and(|t| t.first == Some(i)),
                _ => false,
            })
            .collect();
        // Where a used value's life starts (a clear is the first use of the one buffer it clears).
        let starts = |t: &Transient| -> usize {
            let f = t.first.expect("used values only");
            if hoisted.binary_search(&f).is_ok() {
                0
            } else {
                f
            }
        };
        // Values in order of first use (ties: allocation order); unused ones get no storage.
        let mut values: Vec<(usize, &wgpu::Buffer, &Transient)> = self
            .order
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let t = &self.transients[b];
                t.first.map(|_| (i, b, t))
            })
            .collect();
        values.sort_by_key(|(i, _, t)| (starts(t), *i));
        // Greedy interval colouring, best fit by size: a slot is free for a value once its
        // occupant's last use is before the value's first.
        let mut slots: Vec<(u64, usize)> = Vec::new(); // (size, last use of the occupant)
        let mut slot_of: HashMap<&wgpu::Buffer, usize> = HashMap::new();
        for (_, b, t) in &values {
            let first = starts(t);
            let free = |s: &(u64, usize)| s.1 < first && !opts.no_sharing;
            let fits =
                (0..slots.len()).filter(|&j| free(&slots[j]) && slots[j].0 >= t.bytes).min_by_key(|&j| slots[j].0);
            let j = match fits {
                Some(j) => j,
                // None fits: grow the largest free slot (its buffer is not made yet), else a new one.
                None => match (0..slots.len()).filter(|&j| free(&slots[j])).max_by_key(|&j| slots[j].0) {
                    Some(j) => {
                        slots[j].0 = t.bytes;
                        j
                    }
                    None => {
                        slots.push((t.bytes, 0));
                        slots.len() - 1
                    }
                },
            };
            slots[j].1 = t.last;
            slot_of.insert(b, j);
        }
        let sizes: Vec<u64> = slots.iter().map(|s| s.0).collect();
        let physical = arena.take(&gpu, &sizes);
        let remap = |b: &wgpu::Buffer| -> wgpu::Buffer {
            match slot_of.get(b) {
                Some(&j) => physical[j].clone(),
                None => b.clone(),
            }
        };
        let groups: Vec<wgpu::BindGroup> = self
            .groups
            .iter()
            .map(|g| {
                let bufs: Vec<wgpu::Buffer> = g.buffers.iter().map(remap).collect();
                let refs: Vec<&wgpu::Buffer> = bufs.iter().collect();
                gpu.bind_group(&g.name, &g.layout, &refs)
            })
            .collect();
        // One each (not the device's counters, which count every thread's creations).
        let bind_groups = groups.len();
        // Poison: a copy of all-ones bits into each value right before its first use.
        let poison = if opts.poison {
            let max = values.iter().map(|v| v.2.bytes).max().unwrap_or(4);
            Some(GpuBuffer::<u32>::from_slice(&gpu, "lowbit plan poison", &vec![u32::MAX; (max / 4) as usize])?)
        } else {
            None
        };
        // (A value whose life starts with a clear is zero, not poisoned.)
        let mut first_uses: HashMap<usize, Vec<(wgpu::Buffer, u64)>> = HashMap::new();
        if poison.is_some() {
            for (_, b, t) in &values {
                if hoisted.binary_search(&t.first.expect("used")).is_err() {
                    first_uses.entry(t.first.expect("used")).or_default().push((remap(b), t.bytes));
                }
            }
        }
        let mut cmds = Vec::with_capacity(self.cmds.len());
        let mut stats = PlanStats {
            bind_groups,
            scratch_values: values.len(),
            scratch_bytes: values.iter().map(|v| v.2.bytes).sum(),
            slot_bytes: sizes.iter().sum(),
            ..Default::default()
        };
        // The hoisted clears first, then everything else in order.
        let mut cmds_in = self.cmds.into_iter().map(Some).collect::<Vec<_>>();
        let order = hoisted.iter().copied().chain((0..cmds_in.len()).filter(|i| hoisted.binary_search(i).is_err()));
        let order: Vec<usize> = order.collect();
        for i in order {
            let c = cmds_in[i].take().expect("each command once");
            if let (Some(p), Some(list)) = (&poison, first_uses.get(&i)) {
                for (b, bytes) in list {
                    cmds.push(Planned::Copy {
                        src: p.buffer().clone(),
                        src_offset: 0,
                        dst: b.clone(),
                        dst_offset: 0,
                        size: *bytes,
                    });
                }
            }
            cmds.push(match c {
                Cmd::Dispatch { name, pipeline, group, x, y } => {
                    stats.dispatches += 1;
                    Planned::Dispatch { name, pipeline, group, x, y }
                }
                Cmd::Copy { src, src_offset, dst, dst_offset, size } => {
                    stats.copies += 1;
                    Planned::Copy { src: remap(&src), src_offset, dst: remap(&dst), dst_offset, size }
                }
                Cmd::Clear { buffer } => {
                    stats.clears += 1;
                    Planned::Clear { buffer: remap(&buffer) }
                }
            });
        }
        Ok(Plan { gpu, step: self.step, cmds, groups, stats, _poison: poison })
    }
}

impl Record for Tape {
    fn dispatch(&mut self, _gpu: &Gpu, d: &Dispatch) {
        let key = (d.layout.clone(), d.buffers.iter().map(|b| (*b).clone()).collect::<Vec<_>>());
        let group = match self.group_index.get(&key) {
            Some(&g) => g,
            None => {
                self.groups.push(GroupDesc { name: d.name.to_string(), layout: key.0.clone(), buffers: key.1.clone() });
                self.group_index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        for b in d.buffers {
            self.touch(b);
        }
        self.cmds.push(Cmd::Dispatch { name: d.name.to_string(), pipeline: d.pipeline.clone(), group, x: d.x, y: d.y });
    }

    fn copy(&mut self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64) {
        self.touch(src);
        self.touch(dst);
        self.cmds.push(Cmd::Copy { src: src.clone(), src_offset, dst: dst.clone(), dst_offset, size });
    }

    fn clear(&mut self, buffer: &wgpu::Buffer) {
        self.touch(buffer);
        self.cmds.push(Cmd::Clear { buffer: buffer.clone() });
    }

    fn scratch<T: Pod>(&mut self, gpu: &Gpu, label: &str, len: usize) -> Result<GpuBuffer<T>> {
        let (b, bytes) = GpuBuffer::<T>::placeholder(gpu, label, len)?;
        self.order.push(b.buffer().clone());
        self.transients.insert(b.buffer().clone(), Transient { bytes, first: None, last: 0 });
        Ok(b)
    }

    fn step_state<'a>(&'a self, _gpu: &'a Gpu) -> &'a wgpu::Buffer {
        &self.step
    }

    fn status<'a>(&'a self, _gpu: &'a Gpu) -> &'a wgpu::Buffer {
        &self.status
    }
}

enum Planned {
    Dispatch { name: String, pipeline: wgpu::ComputePipeline, group: usize, x: u32, y: u32 },
    Copy { src: wgpu::Buffer, src_offset: u64, dst: wgpu::Buffer, dst_offset: u64, size: u64 },
    Clear { buffer: wgpu::Buffer },
}

/// A recorded step, ready to replay (see the module docs).
pub struct Plan {
    gpu: Gpu,
    step: wgpu::Buffer,
    cmds: Vec<Planned>,
    groups: Vec<wgpu::BindGroup>,
    stats: PlanStats,
    _poison: Option<GpuBuffer<u32>>,
}

impl Plan {
    /// Writes the [`StepState`] the next replay's kernels read (one 16-byte queue write, ordered
    /// after everything submitted before it).
    pub fn set_step(&self, s: StepState) {
        self.gpu.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&s));
    }

    /// Records the plan into `rec`: set-pipeline, set-bind-group and dispatch for each dispatch
    /// (consecutive ones in one compute pass), and the copies and clears between them.
    pub fn record(&self, rec: &mut Recorder) {
        for c in &self.cmds {
            match c {
                Planned::Dispatch { name, pipeline, group, x, y } => {
                    rec.dispatch_bound(&self.gpu, name, pipeline, &self.groups[*group], *x, *y)
                }
                Planned::Copy { src, src_offset, dst, dst_offset, size } => {
                    rec.copy(src, *src_offset, dst, *dst_offset, *size)
                }
                Planned::Clear { buffer } => rec.clear(buffer),
            }
        }
    }

    /// What the plan holds and records.
    pub fn stats(&self) -> PlanStats {
        self.stats
    }

    /// Dispatches per replay of each kernel, by name, in the order each was first recorded (a
    /// count that needs no timestamps: [`crate::profile`] times them).
    pub fn kernel_dispatches(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for c in &self.cmds {
            if let Planned::Dispatch { name, .. } = c {
                match out.iter_mut().find(|(n, _)| n == name) {
                    Some((_, k)) => *k += 1,
                    None => out.push((name.clone(), 1)),
                }
            }
        }
        out
    }
}
