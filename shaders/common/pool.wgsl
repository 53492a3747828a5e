// What the pooling kernels (maxpool, avgpool) share: k x k windows with stride k on NHWC
// tensors; a tail that does not fill a window is dropped. Mirror of `PoolParams` in
// src/kernels/maxpool.rs; `total` is the output's element count.

struct PoolParams {
    batch: u32,
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    oh: u32,
    ow: u32,
    total: u32,
}

// (b, oy, ox, c) of output element i.
fn pool_out_coords(p: PoolParams, i: u32) -> vec4<u32> {
    return vec4<u32>(i / (p.c * p.ow * p.oh), (i / (p.c * p.ow)) % p.oh, (i / p.c) % p.ow, i % p.c);
}

// (b, y, x, c) of input element i.
fn pool_in_coords(p: PoolParams, i: u32) -> vec4<u32> {
    return vec4<u32>(i / (p.c * p.w * p.h), (i / (p.c * p.w)) % p.h, (i / p.c) % p.w, i % p.c);
}

// Flat input index of (b, y, x, c).
fn pool_in_index(p: PoolParams, b: u32, y: u32, x: u32, c: u32) -> u32 {
    return ((b * p.h + y) * p.w + x) * p.c + c;
}

// Flat output index of (b, oy, ox, c).
fn pool_out_index(p: PoolParams, b: u32, oy: u32, ox: u32, c: u32) -> u32 {
    return ((b * p.oh + oy) * p.ow + ox) * p.c + c;
}
