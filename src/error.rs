//! The one error type of lowbit.

/// Everything that can go wrong in lowbit, with enough context to act on. New variants may be
/// added: match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No GPU adapter matched.
    #[error("no GPU adapter found{detail}. lowbit needs a Vulkan, Metal or DX12 adapter: install your GPU's driver, or on a CPU-only Linux machine Mesa's lavapipe (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`; this repo's `.ci/install-lavapipe` does it). LOWBIT_BACKEND=vulkan|metal|dx12 and LOWBIT_ADAPTER=<name substring> choose among several.")]
    NoAdapter {
        /// What was searched, e.g. " matching LOWBIT_ADAPTER=\"foo\" (found: ...)".
        detail: String,
    },
    /// The adapter refused to create a device.
    #[error("could not open the GPU device: {0}")]
    RequestDevice(String),
    /// A shader failed to compile or a pipeline failed validation.
    #[error("shader `{name}` failed to build: {message}")]
    Shader {
        /// The kernel's name (`shaders/<name>.wgsl`).
        name: String,
        /// wgpu's message.
        message: String,
    },
    /// Shapes that do not fit together.
    #[error("{op}: shape mismatch: {detail}")]
    Shape {
        /// The operation that was called.
        op: &'static str,
        /// What was expected and what was given.
        detail: String,
    },
    /// A zero-sized tensor where the operation needs data.
    #[error("{0}: empty tensor (zero elements)")]
    Empty(&'static str),
    /// A buffer larger than the device can bind.
    #[error("{what}: {bytes} bytes exceeds the adapter's limit of {limit} bytes ({limit_name}); split the tensor")]
    TooLarge {
        /// Which buffer.
        what: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
        /// The wgpu limit's name.
        limit_name: &'static str,
    },
    /// A training step produced a non-finite loss or gradient. Nothing it would have updated
    /// (parameters, velocities, batch-norm running statistics) was changed, by it or by the steps
    /// queued after it, and the step counter is back at it.
    #[error("training step {step} went non-finite ({detail}); nothing was updated by it or after it")]
    NonFinite {
        /// The step (counting from 0).
        step: u64,
        /// What was non-finite.
        detail: String,
    },
    /// An argument out of its domain.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A failed GPU→CPU transfer or device wait.
    #[error("GPU transfer failed: {0}")]
    Transfer(String),
    /// A data file that is missing, truncated or corrupt.
    #[error("{path}: {detail}")]
    Data {
        /// The file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An I/O error with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// lowbit's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
