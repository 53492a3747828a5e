//! Typed GPU buffers and tensors: element count, shape, upload, and async read-back with a
//! blocking convenience wrapper.

use crate::{Error, Gpu, Result};
use bytemuck::Pod;
use std::marker::PhantomData;
use std::sync::Arc;

/// Buffer sizes are padded to this many bytes, so vector copies and `COPY_BUFFER_ALIGNMENT` hold.
pub const PAD_BYTES: u64 = 16;

fn padded(bytes: u64) -> u64 {
    bytes.div_ceil(PAD_BYTES).max(1) * PAD_BYTES
}

/// The bytes of `len` elements of `T`, padded, or an error naming `what` if that overflows.
fn padded_len<T>(what: &str, len: usize) -> Result<u64> {
    len.checked_mul(std::mem::size_of::<T>())
        .and_then(|b| u64::try_from(b).ok())
        .and_then(|b| b.checked_next_multiple_of(PAD_BYTES))
        .map(|b| b.max(PAD_BYTES))
        .ok_or_else(|| Error::InvalidArgument(format!("{what}: {len} elements overflow the size of a buffer")))
}

/// A storage buffer of `len` elements of `T` (its allocation padded to 16 bytes).
pub struct GpuBuffer<T: Pod> {
    buffer: Arc<wgpu::Buffer>,
    len: usize,
    /// A step plan's scratch placeholder ([`crate::plan::Tape`]): it stands for storage the
    /// plan assigns later, holds no data, and cannot be read or written from the host.
    scratch: bool,
    _t: PhantomData<T>,
}

/// The usages of every lowbit storage buffer.
pub(crate) const USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl<T: Pod> GpuBuffer<T> {
    /// Uploads `data`. Fails if it is larger than one binding may be.
    pub fn from_slice(gpu: &Gpu, label: &str, data: &[T]) -> Result<Self> {
        let bytes = std::mem::size_of_val(data) as u64;
        gpu.check_binding(label, padded(bytes))?;
        let mut contents = bytemuck::cast_slice::<T, u8>(data).to_vec();
        contents.resize(padded(bytes) as usize, 0);
        let buffer = gpu.storage_buffer(label, padded(bytes), USAGE, crate::gpu::Init::Data(&contents));
        Ok(GpuBuffer { buffer, len: data.len(), scratch: false, _t: PhantomData })
    }

    /// A zero-filled buffer of `len` elements.
    pub fn zeros(gpu: &Gpu, label: &str, len: usize) -> Result<Self> {
        let bytes = padded_len::<T>(label, len)?;
        gpu.check_binding(label, bytes)?;
        let buffer = gpu.storage_buffer(label, bytes, USAGE, crate::gpu::Init::Zeroed);
        Ok(GpuBuffer { buffer, len, scratch: false, _t: PhantomData })
    }

    /// Views a buffer the application created as `len` elements of `T`, so lowbit's kernels can
    /// read and write it in place. It must have `STORAGE`, `COPY_SRC` and `COPY_DST` usage and
    /// hold at least `len` elements; the kernels bind it whole.
    pub fn from_wgpu(buffer: wgpu::Buffer, len: usize) -> Result<Self> {
        // Overflow is an error before anything is compared.
        padded_len::<T>("GpuBuffer::from_wgpu", len)?;
        if !buffer.usage().contains(USAGE) {
            return Err(Error::InvalidArgument(format!(
                "GpuBuffer::from_wgpu: the buffer's usage {:?} lacks some of {USAGE:?}",
                buffer.usage()
            )));
        }
        let need = (len * std::mem::size_of::<T>()) as u64;
        if buffer.size() < need {
            return Err(Error::Shape {
                op: "GpuBuffer::from_wgpu",
                detail: format!("{len} elements need {need} bytes, the buffer has {}", buffer.size()),
            });
        }
        Ok(GpuBuffer { buffer: Arc::new(buffer), len, scratch: false, _t: PhantomData })
    }

    /// A scratch placeholder of `len` elements (see [`crate::plan::Tape`]): a tiny buffer whose
    /// identity stands for the storage a plan assigns to it, and the padded bytes it will need.
    pub(crate) fn placeholder(gpu: &Gpu, label: &str, len: usize) -> Result<(Self, u64)> {
        let bytes = padded_len::<T>(label, len)?;
        gpu.check_binding(label, bytes)?;
        let buffer = gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: PAD_BYTES,
            usage: USAGE,
            mapped_at_creation: false,
        });
        Ok((GpuBuffer { buffer: Arc::new(buffer), len, scratch: true, _t: PhantomData }, bytes))
    }

    /// Whether this is a step plan's scratch placeholder (no data of its own).
    pub fn is_scratch(&self) -> bool {
        self.scratch
    }

    fn check_host_access(&self, op: &'static str) -> Result<()> {
        if self.scratch {
            return Err(Error::InvalidArgument(format!(
                "{op}: this buffer is a step plan's scratch storage (shared with other values within \
                 a step); copy what you need into a buffer of your own inside the plan"
            )));
        }
        Ok(())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The wgpu buffer (its size is padded to 16 bytes).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Bytes of element data (without padding).
    pub fn bytes(&self) -> u64 {
        (self.len * std::mem::size_of::<T>()) as u64
    }

    /// Overwrites the contents with `data`, which must have exactly `len` elements.
    pub fn write(&self, gpu: &Gpu, data: &[T]) -> Result<()> {
        self.check_host_access("GpuBuffer::write")?;
        if data.len() != self.len {
            return Err(Error::Shape {
                op: "GpuBuffer::write",
                detail: format!("buffer holds {} elements, got {}", self.len, data.len()),
            });
        }
        gpu.queue.write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Overwrites elements `offset..offset + data.len()`, leaving the rest as it is.
    pub fn write_at(&self, gpu: &Gpu, offset: usize, data: &[T]) -> Result<()> {
        self.check_host_access("GpuBuffer::write_at")?;
        if offset.checked_add(data.len()).is_none_or(|end| end > self.len) {
            return Err(Error::Shape {
                op: "GpuBuffer::write_at",
                detail: format!("{} elements at {offset} overrun a buffer of {}", data.len(), self.len),
            });
        }
        if !data.is_empty() {
            let at = (offset * std::mem::size_of::<T>()) as u64;
            gpu.queue.write_buffer(&self.buffer, at, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// Reads the contents back, waiting for all work submitted so far.
    pub async fn read_async(&self, gpu: &Gpu) -> Result<Vec<T>> {
        self.check_host_access("GpuBuffer::read")?;
        let staging = staging(gpu, self.buffer.size());
        let mut enc =
            gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("lowbit read-back") });
        self.copy_into(&mut enc, &staging, 0);
        gpu.submit([enc.finish()]);
        let data = map_read_async(gpu, &staging).await?;
        let bytes = (self.len * std::mem::size_of::<T>()).min(data.len());
        Ok(bytemuck::pod_collect_to_vec::<u8, T>(&data[..bytes]))
    }

    /// Records a copy of the whole buffer into `staging` at byte `offset` (for reading several
    /// buffers back with one submission; see [`map_read`]).
    pub(crate) fn copy_into(&self, enc: &mut wgpu::CommandEncoder, staging: &wgpu::Buffer, offset: u64) {
        enc.copy_buffer_to_buffer(&self.buffer, 0, staging, offset, self.buffer.size());
    }

    /// Blocking [`GpuBuffer::read_async`].
    pub fn read(&self, gpu: &Gpu) -> Result<Vec<T>> {
        pollster::block_on(self.read_async(gpu))
    }
}

impl<T: Pod> Clone for GpuBuffer<T> {
    /// Another handle to the same GPU memory (no copy).
    fn clone(&self) -> Self {
        GpuBuffer { buffer: self.buffer.clone(), len: self.len, scratch: self.scratch, _t: PhantomData }
    }
}

/// An f32 tensor on the GPU with a shape. Kernels view it as `[rows, cols]` with `cols` the last
/// dimension and `rows` the product of the others.
pub struct GpuTensor {
    buf: GpuBuffer<f32>,
    shape: Vec<usize>,
}

/// The product of a shape's dimensions, or an error if it overflows.
fn elements(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::InvalidArgument(format!("{op}: shape {shape:?} has more elements than a usize holds")))
}

fn check_shape(op: &'static str, shape: &[usize], len: usize) -> Result<()> {
    if shape.is_empty() {
        return Err(Error::Shape { op, detail: "a shape needs at least one dimension".into() });
    }
    let n = elements(op, shape)?;
    if n == 0 {
        return Err(Error::Empty(op));
    }
    if n != len {
        return Err(Error::Shape { op, detail: format!("shape {shape:?} has {n} elements, data has {len}") });
    }
    if n > u32::MAX as usize {
        return Err(Error::InvalidArgument(format!("{op}: {n} elements exceeds the 2^32 element index range")));
    }
    Ok(())
}

impl GpuTensor {
    /// Uploads `data` with `shape` (whose product must equal `data.len()`, and be non-zero).
    pub fn from_slice(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Result<Self> {
        check_shape("GpuTensor::from_slice", shape, data.len())?;
        Ok(GpuTensor { buf: GpuBuffer::from_slice(gpu, "lowbit tensor", data)?, shape: shape.to_vec() })
    }

    /// Views an existing buffer with `shape` (no copy).
    pub fn from_buffer(buf: GpuBuffer<f32>, shape: &[usize]) -> Result<Self> {
        check_shape("GpuTensor::from_buffer", shape, buf.len())?;
        Ok(GpuTensor { buf, shape: shape.to_vec() })
    }

    /// A zero tensor.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Self> {
        let n = elements("GpuTensor::zeros", shape)?;
        check_shape("GpuTensor::zeros", shape, n)?;
        Ok(GpuTensor { buf: GpuBuffer::zeros(gpu, "lowbit tensor", n)?, shape: shape.to_vec() })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Always false: tensors are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Product of all dimensions but the last.
    pub fn rows(&self) -> usize {
        self.len() / self.cols()
    }

    /// The last dimension.
    pub fn cols(&self) -> usize {
        *self.shape.last().expect("shape checked non-empty")
    }

    /// The underlying buffer.
    pub fn buffer(&self) -> &GpuBuffer<f32> {
        &self.buf
    }

    /// Reads the data back (blocking).
    pub fn read(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        self.buf.read(gpu)
    }
}

/// A buffer to read `bytes` back into (`MAP_READ | COPY_DST`).
pub(crate) fn staging(gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
    gpu.create_buffer(&wgpu::BufferDescriptor {
        label: Some("lowbit read-back"),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Waits for the submitted work that fills `staging` and returns its bytes.
pub(crate) async fn map_read_async(gpu: &Gpu, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    let slice = staging.slice(..);
    let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    gpu.wait()?;
    rx.receive()
        .await
        .ok_or_else(|| Error::Transfer("map callback dropped".into()))?
        .map_err(|e| Error::Transfer(e.to_string()))?;
    let out = slice.get_mapped_range().map_err(|e| Error::Transfer(e.to_string()))?.to_vec();
    staging.unmap();
    Ok(out)
}

/// Blocking [`map_read_async`].
pub(crate) fn map_read(gpu: &Gpu, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    pollster::block_on(map_read_async(gpu, staging))
}
