//! The GPU context: adapter choice, device creation, capability report, and pipeline building
//! inside an error scope.

use crate::{Error, Result};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What lowbit got from the adapter, printed by tests and reports.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    /// Adapter name, e.g. "NVIDIA H100 80GB HBM3" or "llvmpipe (LLVM 19.1.7, 256 bits)".
    pub name: String,
    /// "vulkan", "metal", "dx12", ...
    pub backend: String,
    /// Discrete / integrated / virtual / cpu / other.
    pub device_type: String,
    /// Driver name and version, as the adapter reports them.
    pub driver: String,
    /// `shader-f16` was enabled.
    pub shader_f16: bool,
    /// Subgroup operations were enabled.
    pub subgroups: bool,
    /// Timestamp queries were enabled.
    pub timestamps: bool,
    /// Packed 4×int8 dot products are hardware-accelerated (Vulkan's
    /// `integerDotProduct4x8BitPackedSignedAccelerated`). `None` where the backend cannot say.
    /// `dot4I8Packed` works everywhere; without acceleration it is emulated.
    pub int_dot_accelerated: Option<bool>,
    /// The cooperative-matrix (tensor core) configurations wgpu offers on this adapter, as
    /// `"MxNxK ab->cr"` (e.g. `"16x16x16 f16->f32"`), when `EXPERIMENTAL_COOPERATIVE_MATRIX` was
    /// enabled; empty where the adapter has none (lavapipe) or the backend cannot say.
    pub cooperative_matrix: Vec<String>,
    /// The adapter's smallest and largest subgroup sizes (`None` where unknown).
    pub subgroup_sizes: Option<(u32, u32)>,
    /// Largest storage buffer binding, bytes.
    pub max_storage_binding: u64,
    /// Largest buffer, bytes.
    pub max_buffer: u64,
    /// Which layout lowbit launches where a kernel has one for CPU adapters and one for GPUs
    /// ([`Gpu::cpu_layouts`]): by `device_type` unless `LOWBIT_LAYOUTS` chose.
    pub layouts: Layouts,
    /// The threads a launch should bring to keep the device busy ([`Gpu::fill`]):
    /// [`crate::kernels::TEAM_FILL`] unless `LOWBIT_FILL` chose.
    pub fill: u32,
    /// Whether a trainer times the integer GEMMs' paths for the shapes of its steps when it
    /// builds their plans ([`Gpu::tunes`]): on adapters that are not CPUs unless `LOWBIT_TUNE`
    /// chose.
    pub tune: bool,
}

/// Which of a kernel's layouts lowbit launches where it has two: one for CPU adapters (a thread
/// per row, pixel or group and vec4s, no workgroup barriers — a barrier costs a CPU far more than
/// a GPU) and one for GPUs (workgroup trees, subgroup reductions, bounds that keep a workgroup's
/// work small). Both give the same bits.
///
/// `Auto` (the default) takes the CPU layouts on an adapter that reports itself a CPU (lavapipe)
/// and the GPU layouts elsewhere; the environment variable `LOWBIT_LAYOUTS` (`auto`, `cpu`,
/// `gpu`) overrides it, so a machine without a GPU can run — and test — every kernel a GPU
/// would launch (slowly: that is not what the layouts are for there).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Layouts {
    /// By the adapter's type.
    #[default]
    Auto,
    /// The CPU layouts on any adapter.
    Cpu,
    /// The GPU layouts on any adapter.
    Gpu,
}

impl Layouts {
    /// `LOWBIT_LAYOUTS` (`auto` where unset), or an error naming the accepted values.
    pub fn from_env() -> Result<Layouts> {
        env_value("LOWBIT_LAYOUTS", layouts_error)?.map_or(Ok(Layouts::Auto), |v| Layouts::parse(&v))
    }

    /// `auto`, `cpu` or `gpu` (any case; empty is `auto`), or an error naming the accepted values.
    pub fn parse(v: &str) -> Result<Layouts> {
        match v.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Layouts::Auto),
            "cpu" => Ok(Layouts::Cpu),
            "gpu" => Ok(Layouts::Gpu),
            _ => Err(layouts_error(v)),
        }
    }

    /// `Cpu` or `Gpu`: `Auto` resolved for an adapter of `device_type` (as [`AdapterReport`]
    /// names it).
    pub fn resolve(self, device_type: &str) -> Layouts {
        match self {
            Layouts::Auto if device_type == "cpu" => Layouts::Cpu,
            Layouts::Auto => Layouts::Gpu,
            chosen => chosen,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Layouts::Auto => "auto",
            Layouts::Cpu => "cpu",
            Layouts::Gpu => "gpu",
        }
    }
}

/// `LOWBIT_FILL` ([`crate::kernels::TEAM_FILL`] where unset), or an error naming what it
/// takes.
fn fill_from_env() -> Result<u32> {
    env_value("LOWBIT_FILL", fill_error)?.map_or(Ok(crate::kernels::TEAM_FILL), |v| parse_fill(&v))
}

/// Environment variable `name`'s value, `None` where it is unset; a value that is not Unicode is
/// the error `bad` forms from its debug form (as for a value the variable does not take).
pub(crate) fn env_value(name: &str, bad: impl FnOnce(&str) -> Error) -> Result<Option<String>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(bad(&format!("{v:?}"))),
        Ok(v) => Ok(Some(v)),
    }
}

/// `LOWBIT_TUNE` for an adapter of `device_type` (unset, empty or `auto`: on unless it is a CPU),
/// or an error naming what it takes.
fn tune_from_env(device_type: &str) -> Result<bool> {
    parse_tune(&env_value("LOWBIT_TUNE", tune_error)?.unwrap_or_default(), device_type)
}

/// A `LOWBIT_TUNE` value ([`tune_from_env`]).
fn parse_tune(v: &str, device_type: &str) -> Result<bool> {
    auto_switch(v, device_type != "cpu").ok_or_else(|| tune_error(v))
}

fn tune_error(v: &str) -> Error {
    Error::InvalidArgument(format!("LOWBIT_TUNE={v}: expected auto, on (1) or off (0)"))
}

fn layouts_error(v: &str) -> Error {
    Error::InvalidArgument(format!("LOWBIT_LAYOUTS={v}: expected auto, cpu or gpu"))
}

/// A count of threads (decimal, 0 to 2³² − 1), `max` for 2³² − 1, or empty or `default` for
/// [`crate::kernels::TEAM_FILL`].
fn parse_fill(v: &str) -> Result<u32> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "default" => Ok(crate::kernels::TEAM_FILL),
        "max" => Ok(u32::MAX),
        n => n.parse().map_err(|_| fill_error(v)),
    }
}

/// An on/off switch's word, any case, spaces around it ignored: `1`, `on`, `yes` or `true` on;
/// `0`, `off`, `no` or `false` off; `None` for anything else (each switch decides what an empty
/// value, or a word of its own such as `LOWBIT_COOP=auto`, means).
pub(crate) fn switch_word(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

/// A switch that also takes `auto`: empty or `auto` (any case, spaces around it ignored) is
/// `auto`, the switch's own default; else [`switch_word`]'s reading (`LOWBIT_TUNE`, `LOWBIT_COOP`).
pub(crate) fn auto_switch(v: &str, auto: bool) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Some(auto),
        _ => switch_word(v),
    }
}

/// The switches the kernels read when they are built, checked when a `Gpu` opens: a value they
/// do not take is an error then, on every adapter, rather than only where a kernel that reads it
/// is first built (`LOWBIT_COOP`, which only adapters with a cooperative-matrix unit consult) or
/// never (`LOWBIT_SHADER_CHECKS=off` once turned the checks on).
fn check_switches() -> Result<()> {
    crate::kernels::gemm_int_coop::GemmIntCoop::allowed()?;
    crate::shaders::checks_from_env()?;
    Ok(())
}

fn fill_error(v: &str) -> Error {
    Error::InvalidArgument(format!("LOWBIT_FILL={v}: expected a count of threads (0 to {}), max or default", u32::MAX))
}

impl AdapterReport {
    /// One-line JSON object, as `kernel_report` prints first.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "adapter": self.name,
            "backend": self.backend,
            "device_type": self.device_type,
            "driver": self.driver,
            "int_dot_accelerated": self.int_dot_accelerated,
            "shader_f16": self.shader_f16,
            "subgroups": self.subgroups,
            "timestamps": self.timestamps,
            "subgroup_sizes": self.subgroup_sizes.map(|(a, b)| [a, b]),
            "cooperative_matrix": self.cooperative_matrix,
            "layouts": self.layouts.name(),
            "fill": self.fill,
            "tune": self.tune,
        })
    }
}

impl std::fmt::Display for AdapterReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {}; f16 {}, subgroups {}, timestamps {}, int8 dot accelerated {}, cooperative matrices {}, {} layouts, fill {}, tune {})",
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            self.shader_f16,
            self.subgroups,
            self.timestamps,
            match self.int_dot_accelerated {
                Some(true) => "yes",
                Some(false) => "no",
                None => "unknown",
            },
            if self.cooperative_matrix.is_empty() { "none".to_string() } else { self.cooperative_matrix.join(", ") },
            self.layouts.name(),
            self.fill,
            if self.tune { "on" } else { "off" },
        )
    }
}

/// A device and queue with what lowbit knows about them. Kernels are built from a `&Gpu`.
///
/// Cheap to clone: the device and queue are wgpu's shared handles and everything lowbit keeps
/// beside them (the report, creation counters, the profiler slot) is shared too, so a
/// [`crate::nn::Trainer`] or an application can each hold one.
#[derive(Clone)]
pub struct Gpu {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    shared: Arc<Shared>,
}

/// What every clone of a [`Gpu`] shares.
struct Shared {
    report: AdapterReport,
    limits: wgpu::Limits,
    counters: Counters,
    /// The [`StepState`](crate::record::StepState) of work recorded outside a step plan: stream
    /// base 0, learning-rate factor 1.
    unit_step: wgpu::Buffer,
    /// A clear status (`[0, u32::MAX]`, see [`crate::kernels::finite`]) bound by state-updating
    /// kernels recorded outside a step plan: they always update.
    unit_status: wgpu::Buffer,
    /// The active [`crate::profile::Profile`] of this device, if any (checked without locking
    /// through `profiling`).
    pub(crate) profile: Mutex<Option<crate::profile::Active>>,
    profiling: std::sync::atomic::AtomicBool,
    /// Kernel sets built once per device and shared ([`Gpu::shared_kernels`]).
    kernels: Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>,
}

/// GPU objects lowbit has created on one device, by kind ([`Gpu::creations`]): a planned
/// training step creates none, and tests read these counters to prove it.
#[derive(Default)]
struct Counters {
    buffers: AtomicU64,
    uniforms: AtomicU64,
    bind_groups: AtomicU64,
}

/// A snapshot of [`Gpu::creations`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Creations {
    /// Storage, staging and placeholder buffers.
    pub buffers: u64,
    /// Uniform buffers (kernel parameters).
    pub uniforms: u64,
    /// Bind groups.
    pub bind_groups: u64,
}

impl std::ops::Sub for Creations {
    type Output = Creations;
    fn sub(self, o: Creations) -> Creations {
        Creations {
            buffers: self.buffers - o.buffers,
            uniforms: self.uniforms - o.uniforms,
            bind_groups: self.bind_groups - o.bind_groups,
        }
    }
}

/// What a storage buffer starts with.
pub(crate) enum Init<'a> {
    /// Zeros.
    Zeroed,
    /// These bytes (the buffer's whole padded size).
    Data(&'a [u8]),
}

fn backends_from_env() -> Result<wgpu::Backends> {
    match std::env::var("LOWBIT_BACKEND") {
        Err(_) => Ok(wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12),
        Ok(v) => match v.to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
            "metal" | "mtl" => Ok(wgpu::Backends::METAL),
            "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
            other => Err(Error::InvalidArgument(format!("LOWBIT_BACKEND={other}: expected vulkan, metal or dx12"))),
        },
    }
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

#[cfg(not(any(target_arch = "wasm32", target_vendor = "apple")))]
fn query_int_dot(adapter: &wgpu::Adapter) -> Option<bool> {
    use ash::vk;
    // SAFETY: the hal adapter is only borrowed for two read-only property queries, while the
    // wgpu adapter is alive; no handle escapes this function.
    unsafe {
        let hal = adapter.as_hal::<wgpu::hal::api::Vulkan>()?;
        let instance = hal.shared_instance().raw_instance();
        let pd = hal.raw_physical_device();
        let props = instance.get_physical_device_properties(pd);
        if props.api_version < vk::API_VERSION_1_3 {
            return Some(false);
        }
        let mut dot = vk::PhysicalDeviceShaderIntegerDotProductProperties::default();
        let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut dot);
        instance.get_physical_device_properties2(pd, &mut props2);
        Some(dot.integer_dot_product4x8_bit_packed_signed_accelerated == vk::TRUE)
    }
}

#[cfg(any(target_arch = "wasm32", target_vendor = "apple"))]
fn query_int_dot(_adapter: &wgpu::Adapter) -> Option<bool> {
    None
}

impl Gpu {
    /// Finds the best adapter (discrete > integrated > virtual > cpu) and opens a device on it.
    /// `LOWBIT_BACKEND` (vulkan, metal, dx12) restricts the backend; `LOWBIT_ADAPTER` picks the
    /// first adapter whose name contains the given text (case-insensitive).
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// Async form of [`Gpu::new`].
    pub async fn new_async() -> Result<Self> {
        let backends = backends_from_env()?;
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let mut adapters = instance.enumerate_adapters(backends).await;
        let found: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        if let Ok(want) = std::env::var("LOWBIT_ADAPTER") {
            let w = want.to_ascii_lowercase();
            adapters.retain(|a| a.get_info().name.to_ascii_lowercase().contains(&w));
            if adapters.is_empty() {
                return Err(Error::NoAdapter {
                    detail: format!(" matching LOWBIT_ADAPTER={want:?} (found: {found:?})"),
                });
            }
        }
        adapters.sort_by_key(|a| type_rank(a.get_info().device_type));
        let adapter = adapters
            .into_iter()
            .next()
            .ok_or_else(|| Error::NoAdapter { detail: format!(" for backends {backends:?}") })?;
        Self::from_adapter(adapter).await
    }

    /// Opens a device on an adapter the caller chose (with the layouts `LOWBIT_LAYOUTS` asks for,
    /// see [`Layouts`], the fill `LOWBIT_FILL` asks for, see [`Gpu::fill`], and the tuning
    /// `LOWBIT_TUNE` asks for, see [`Gpu::tunes`]). A value of `LOWBIT_LAYOUTS`, `LOWBIT_FILL`,
    /// `LOWBIT_TUNE`, `LOWBIT_COOP` or `LOWBIT_SHADER_CHECKS` it does not take is an error naming
    /// the ones it does.
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let layouts = Layouts::from_env()?;
        let fill = fill_from_env()?;
        check_switches()?;
        let info = adapter.get_info();
        let tune = tune_from_env(type_name(info.device_type))?;
        let available = adapter.features();
        let wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let features = available & wanted;
        let limits = adapter.limits();
        let int_dot_accelerated = query_int_dot(&adapter);
        let coop = features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lowbit"),
                required_features: features,
                required_limits: limits.clone(),
                // SAFETY: the one experimental feature lowbit asks for is cooperative matrices,
                // used by the `peak_coop` rate probe, `gemm_int_coop` and `gemm_fp8_coop`, whose
                // outputs the test suite checks on every adapter that has them (and `GemmInt` and
                // `GemmFp8` check the GEMMs' against their tiles or reference before using them).
                experimental_features: if coop {
                    unsafe { wgpu::ExperimentalFeatures::enabled() }
                } else {
                    wgpu::ExperimentalFeatures::disabled()
                },
                ..Default::default()
            })
            .await
            .map_err(|e| Error::RequestDevice(e.to_string()))?;
        let report = AdapterReport {
            name: info.name.clone(),
            backend: info.backend.to_str().to_string(),
            device_type: type_name(info.device_type).to_string(),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            int_dot_accelerated,
            cooperative_matrix: if coop {
                adapter.cooperative_matrix_properties().iter().map(coop_name).collect()
            } else {
                Vec::new()
            },
            subgroup_sizes: Some((info.subgroup_min_size, info.subgroup_max_size)),
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
            layouts: layouts.resolve(type_name(info.device_type)),
            fill,
            tune,
        };
        Ok(Self::assemble(device, queue, report, limits))
    }

    /// Wraps a device the application already has, so lowbit shares it. `info` describes its
    /// adapter when known (the report then says which; otherwise the name is "external" and the
    /// layouts are a GPU's and tuning is on unless `LOWBIT_LAYOUTS` and `LOWBIT_TUNE` say
    /// otherwise). Fails only on a `LOWBIT_LAYOUTS`, `LOWBIT_FILL`, `LOWBIT_TUNE`, `LOWBIT_COOP` or
    /// `LOWBIT_SHADER_CHECKS` it does not take.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: Option<wgpu::AdapterInfo>) -> Result<Self> {
        let layouts = Layouts::from_env()?;
        let fill = fill_from_env()?;
        check_switches()?;
        let limits = device.limits();
        let features = device.features();
        let (name, backend, device_type, driver) = match info {
            Some(i) => (
                i.name,
                i.backend.to_str().to_string(),
                type_name(i.device_type).to_string(),
                format!("{} {}", i.driver, i.driver_info).trim().to_string(),
            ),
            None => ("external".into(), "unknown".into(), "unknown".into(), String::new()),
        };
        let layouts = layouts.resolve(&device_type);
        let tune = tune_from_env(&device_type)?;
        let report = AdapterReport {
            name,
            backend,
            device_type,
            driver,
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            int_dot_accelerated: None,
            cooperative_matrix: Vec::new(),
            subgroup_sizes: None,
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
            layouts,
            fill,
            tune,
        };
        Ok(Self::assemble(device, queue, report, limits))
    }

    fn assemble(device: wgpu::Device, queue: wgpu::Queue, report: AdapterReport, limits: wgpu::Limits) -> Self {
        use wgpu::util::DeviceExt;
        let unit_step = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("lowbit unit step state"),
            contents: bytemuck::bytes_of(&crate::record::StepState::UNIT),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let unit_status = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("lowbit clear status"),
            contents: bytemuck::cast_slice(&crate::kernels::finite::CLEAR),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let shared = Shared {
            report,
            limits,
            counters: Counters::default(),
            unit_step,
            unit_status,
            profile: Mutex::new(None),
            profiling: std::sync::atomic::AtomicBool::new(false),
            kernels: Mutex::new(Vec::new()),
        };
        Gpu { device, queue, shared: Arc::new(shared) }
    }

    /// The same device and queue with the kernels laid out for `layouts` (`Auto`: by the adapter's
    /// type), whatever `LOWBIT_LAYOUTS` says: a `Gpu` of its own — kernel sets are built per
    /// `Gpu` ([`Gpu::shared_kernels`]), and so are the creation counters and the profiler slot —
    /// so one process can run both layouts side by side (their bits are the same).
    pub fn with_layouts(&self, layouts: Layouts) -> Gpu {
        let mut report = self.shared.report.clone();
        report.layouts = layouts.resolve(&report.device_type);
        Self::assemble(self.device.clone(), self.queue.clone(), report, self.shared.limits.clone())
    }

    /// The same device and queue with the fill set to `threads` (see [`Gpu::fill`]), whatever
    /// `LOWBIT_FILL` says: a `Gpu` of its own, as [`Gpu::with_layouts`] makes, so one process
    /// can time several fills side by side (their bits are the same).
    pub fn with_fill(&self, threads: u32) -> Gpu {
        let mut report = self.shared.report.clone();
        report.fill = threads;
        Self::assemble(self.device.clone(), self.queue.clone(), report, self.shared.limits.clone())
    }

    /// The same device and queue with tuning on or off (see [`Gpu::tunes`]), whatever
    /// `LOWBIT_TUNE` says: a `Gpu` of its own, as [`Gpu::with_layouts`] makes, so one process can
    /// train both ways side by side (their bits are the same).
    pub fn with_tuning(&self, on: bool) -> Gpu {
        let mut report = self.shared.report.clone();
        report.tune = on;
        Self::assemble(self.device.clone(), self.queue.clone(), report, self.shared.limits.clone())
    }

    /// Whether a trainer tunes the integer GEMMs for its steps: when it builds a step plan, it
    /// times, for each shape class of integer product the plan met without a tuning result, the
    /// tiles and (where the adapter has one) the cooperative-matrix unit, and builds the plan again
    /// with the fastest ([`crate::kernels::gemm_int::GemmInt::tune_untuned`]). It chooses only
    /// among paths that give a product the bits of its untuned path (the integer sums are exact on
    /// every tile and on the unit; where SMP's samples or scale blocks along K split a long K into
    /// f32 partial values, among the tiles that split it alike), so it changes no bit, only time,
    /// and runs give the same bits whatever their timings. On by default except on CPU adapters
    /// (lavapipe: their layouts run the lanes kernel, which has no tiles to choose); the
    /// environment variable `LOWBIT_TUNE` (`auto`, `on` or `1`, `off` or `0`) or
    /// [`Gpu::with_tuning`] chooses otherwise. The f32, FP8 and TinyScript GEMMs keep their
    /// heuristic tiles in training: their f32 sums split along K by the tile count, so a choice
    /// timed anew in each run would make a run's bits depend on its timings.
    pub fn tunes(&self) -> bool {
        self.report().tune
    }

    /// The threads a launch should bring to keep the device busy, where lowbit may choose how
    /// finely to cut the same work, bit for bit: the kernels that give each row a team of
    /// threads on the GPU layouts (`im2col_quantize`'s `main_rows`, `quantize_fused`'s
    /// `main_row`) make the teams larger below it, so that a tensor of few rows still spreads
    /// over the GPU ([`crate::kernels::balanced_team`]'s `fill`; the kernels' `with_team_fill`
    /// overrides it per kernel), and the integer GEMMs (tiles and cooperative unit) split a
    /// product of few tiles over a long K, whose splits sum exactly, into as many splits as
    /// bring it to this many threads
    /// ([`crate::kernels::gemm::fill_split_plan`]; 0 keeps `split_plan`'s count).
    /// [`crate::kernels::TEAM_FILL`] (2¹⁷) unless the environment variable `LOWBIT_FILL` (a
    /// count of threads, `max` or `default`) or [`Gpu::with_fill`] chose another. It changes no
    /// bit.
    pub fn fill(&self) -> u32 {
        self.report().fill
    }

    /// Whether the device runs cooperative matrices of `size`×`size`×`size` with f16 operands and
    /// f32 accumulators (what `peak_coop` needs, with f16 and subgroups).
    pub fn has_coop_f16(&self, size: u32) -> bool {
        let want =
            wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
        self.device.features().contains(want)
            && self.shared.report.cooperative_matrix.iter().any(|c| *c == format!("{size}x{size}x{size} f16->f32"))
    }

    /// What the adapter is and what was enabled.
    pub fn report(&self) -> &AdapterReport {
        &self.shared.report
    }

    /// Whether the adapter reports itself a CPU (lavapipe does). Kernels choose their layout by
    /// [`Gpu::cpu_layouts`], not by this.
    pub fn is_cpu(&self) -> bool {
        self.report().device_type == "cpu"
    }

    /// Whether kernels with a CPU layout and a GPU layout launch the CPU one (see [`Layouts`]):
    /// on a CPU adapter unless `LOWBIT_LAYOUTS=gpu`, elsewhere only with `LOWBIT_LAYOUTS=cpu`.
    pub fn cpu_layouts(&self) -> bool {
        self.report().layouts == Layouts::Cpu
    }

    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.shared.limits
    }

    /// How many buffers, uniform buffers and bind groups lowbit has created on this device so
    /// far (every clone of this `Gpu` counts into the same totals).
    pub fn creations(&self) -> Creations {
        let c = &self.shared.counters;
        Creations {
            buffers: c.buffers.load(Ordering::Relaxed),
            uniforms: c.uniforms.load(Ordering::Relaxed),
            bind_groups: c.bind_groups.load(Ordering::Relaxed),
        }
    }

    /// The device's one `T`, built by `build` on first use and shared by every caller after
    /// (pipelines are compiled once per device, not once per trainer).
    pub fn shared_kernels<T: Send + Sync + 'static>(&self, build: impl FnOnce(&Gpu) -> Result<T>) -> Result<Arc<T>> {
        let mut all = self.shared.kernels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = all.iter().find_map(|k| k.clone().downcast::<T>().ok()) {
            return Ok(k);
        }
        let k = Arc::new(build(self)?);
        all.push(k.clone());
        Ok(k)
    }

    /// The [`StepState`](crate::record::StepState) bound by work recorded outside a step plan.
    pub(crate) fn unit_step(&self) -> &wgpu::Buffer {
        &self.shared.unit_step
    }

    /// The clear status bound by state-updating kernels recorded outside a step plan.
    pub(crate) fn unit_status(&self) -> &wgpu::Buffer {
        &self.shared.unit_status
    }

    /// Whether a profile is active on this device (no lock taken).
    pub(crate) fn profiling(&self) -> bool {
        self.shared.profiling.load(Ordering::Acquire)
    }

    /// Runs `f` on this device's profiler slot, recording whether a profile is active after it.
    pub(crate) fn with_profile<R>(&self, f: impl FnOnce(&mut Option<crate::profile::Active>) -> R) -> R {
        let mut slot = self.shared.profile.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut slot);
        self.shared.profiling.store(slot.is_some(), Ordering::Release);
        r
    }

    /// A plain buffer (counted in [`Gpu::creations`]).
    pub(crate) fn create_buffer(&self, desc: &wgpu::BufferDescriptor) -> wgpu::Buffer {
        let counter = if desc.usage.contains(wgpu::BufferUsages::UNIFORM) {
            &self.shared.counters.uniforms
        } else {
            &self.shared.counters.buffers
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.device.create_buffer(desc)
    }

    /// A buffer holding `contents` (counted in [`Gpu::creations`]).
    pub(crate) fn create_buffer_init(&self, label: &str, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        let counter = if usage.contains(wgpu::BufferUsages::UNIFORM) {
            &self.shared.counters.uniforms
        } else {
            &self.shared.counters.buffers
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage })
    }

    /// A bind group of `layout` binding `buffers` whole, in binding order (counted in
    /// [`Gpu::creations`]).
    pub(crate) fn bind_group(
        &self,
        name: &str,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        self.shared.counters.bind_groups.fetch_add(1, Ordering::Relaxed);
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(name), layout, entries: &entries })
    }

    /// Fails with [`Error::TooLarge`] if a storage binding of `bytes` exceeds the device limits.
    pub fn check_binding(&self, what: &str, bytes: u64) -> Result<()> {
        if bytes > self.shared.report.max_storage_binding {
            return Err(Error::TooLarge {
                what: what.to_string(),
                bytes,
                limit: self.shared.report.max_storage_binding,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        if bytes > self.shared.report.max_buffer {
            return Err(Error::TooLarge {
                what: what.to_string(),
                bytes,
                limit: self.shared.report.max_buffer,
                limit_name: "max_buffer_size",
            });
        }
        Ok(())
    }

    /// Submits `commands` to the queue.
    pub fn submit<I: IntoIterator<Item = wgpu::CommandBuffer>>(&self, commands: I) -> wgpu::SubmissionIndex {
        self.queue.submit(commands)
    }

    /// A new buffer of `bytes` (a multiple of 4) with `usage`, holding `init`.
    pub(crate) fn storage_buffer(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
        init: Init<'_>,
    ) -> Arc<wgpu::Buffer> {
        Arc::new(match init {
            Init::Zeroed => self.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            }),
            Init::Data(d) => self.create_buffer_init(label, d, usage),
        })
    }

    /// Blocks until all submitted work has finished.
    pub fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map(|_| ()).map_err(|e| Error::Transfer(e.to_string()))
    }

    /// Builds a compute pipeline from WGSL inside a validation error scope; a failure comes back
    /// as [`Error::Shader`] naming the kernel instead of reaching wgpu's panicking handler.
    pub fn compute_pipeline(
        &self,
        name: &str,
        source: &str,
        entry: &str,
        layout: &wgpu::PipelineLayout,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        // SAFETY: every runtime check is on.
        unsafe {
            self.compute_pipeline_with(name, source, entry, layout, constants, wgpu::ShaderRuntimeChecks::checked())
        }
    }

    /// [`Gpu::compute_pipeline`] with the given runtime checks.
    ///
    /// # Safety
    /// Where `checks` turns a check off, the shader must not need it: with `bounds_checks` off,
    /// no index it forms may leave its array or buffer; with `force_loop_bounding` off, every
    /// loop must end (see [`wgpu::ShaderRuntimeChecks`]).
    pub unsafe fn compute_pipeline_with(
        &self,
        name: &str,
        source: &str,
        entry: &str,
        layout: &wgpu::PipelineLayout,
        constants: &[(&str, f64)],
        checks: wgpu::ShaderRuntimeChecks,
    ) -> Result<wgpu::ComputePipeline> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc =
            wgpu::ShaderModuleDescriptor { label: Some(name), source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(source)) };
        // SAFETY: the caller's contract.
        let module = unsafe { self.device.create_shader_module_trusted(desc, checks) };
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: Some(layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(Error::Shader { name: format!("{name}::{entry}"), message: e.to_string() }),
            None => Ok(pipeline),
        }
    }
}

/// `"MxNxK ab->cr"` for a cooperative-matrix configuration (`+sat` where it saturates).
fn coop_name(c: &wgpu::CooperativeMatrixProperties) -> String {
    let t = |s: wgpu::CooperativeScalarType| match s {
        wgpu::CooperativeScalarType::F32 => "f32",
        wgpu::CooperativeScalarType::F16 => "f16",
        wgpu::CooperativeScalarType::I32 => "i32",
        wgpu::CooperativeScalarType::U32 => "u32",
    };
    format!(
        "{}x{}x{} {}->{}{}",
        c.m_size,
        c.n_size,
        c.k_size,
        t(c.ab_type),
        t(c.cr_type),
        if c.saturating_accumulation { "+sat" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::{parse_fill, parse_tune, Layouts};

    #[test]
    fn fill_parses() {
        use crate::kernels::TEAM_FILL;
        assert_eq!(parse_fill("").unwrap(), TEAM_FILL);
        assert_eq!(parse_fill("Default").unwrap(), TEAM_FILL);
        assert_eq!(parse_fill(" 0 ").unwrap(), 0);
        assert_eq!(parse_fill("65536").unwrap(), 65536);
        assert_eq!(parse_fill("max").unwrap(), u32::MAX);
        assert_eq!(parse_fill("4294967295").unwrap(), u32::MAX);
        for bad in ["4294967296", "-1", "1e5", "half"] {
            let err = parse_fill(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("LOWBIT_FILL={bad}")) && err.contains("max or default"), "{err}");
        }
    }

    #[test]
    fn tune_parses() {
        for (v, cpu, gpu) in [("", false, true), ("AUTO", false, true), (" on", true, true), ("0", false, false)] {
            assert_eq!((parse_tune(v, "cpu").unwrap(), parse_tune(v, "discrete").unwrap()), (cpu, gpu), "{v:?}");
        }
        assert!(parse_tune("auto", "unknown").unwrap());
        for bad in ["fast", "2"] {
            let err = parse_tune(bad, "cpu").unwrap_err().to_string();
            assert!(err.contains(&format!("LOWBIT_TUNE={bad}")) && err.contains("auto, on (1) or off (0)"), "{err}");
        }
    }

    #[test]
    fn layouts_parse_and_resolve() {
        assert_eq!(Layouts::parse("GPU").unwrap(), Layouts::Gpu);
        assert_eq!(Layouts::parse("cpu").unwrap(), Layouts::Cpu);
        assert_eq!(Layouts::parse("").unwrap(), Layouts::Auto);
        let err = Layouts::parse("fast").unwrap_err().to_string();
        assert!(err.contains("LOWBIT_LAYOUTS=fast") && err.contains("auto, cpu or gpu"), "{err}");
        assert_eq!(Layouts::Auto.resolve("cpu"), Layouts::Cpu);
        assert_eq!(Layouts::Auto.resolve("discrete"), Layouts::Gpu);
        assert_eq!(Layouts::Auto.resolve("unknown"), Layouts::Gpu);
        assert_eq!(Layouts::Gpu.resolve("cpu"), Layouts::Gpu);
        assert_eq!(Layouts::Cpu.resolve("integrated"), Layouts::Cpu);
    }
}
