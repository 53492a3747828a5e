//! Reference for `shaders/copy.wgsl`.

/// `dst[i] = src[i]`.
pub fn copy<T: Copy>(src: &[T]) -> Vec<T> {
    src.to_vec()
}
