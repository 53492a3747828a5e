// A convolution's geometry on NHWC tensors, mirror of `ConvParams` in src/kernels/im2col.rs,
// shared by the kernels that unfold (im2col, im2col_quantize, im2col_quantize_transpose).

struct ConvParams {
    batch: u32,
    h: u32,
    w: u32,
    c: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad: u32,
    oh: u32,
    ow: u32,
    total: u32,
    pad0: u32,
}
