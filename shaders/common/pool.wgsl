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

// Input pixel pix's image b and window (oy, ox) = (y / k, x / k), and 1 where that window is in
// the output (0 for a tail that no window holds): what a backward with a thread per pixel divides
// once for all the pixel's channels.
fn pool_pixel_window(p: PoolParams, pix: u32) -> vec4<u32> {
    let q = pool_in_coords(p, pix * p.c);
    let oy = q.y / p.k;
    let ox = q.z / p.k;
    return vec4<u32>(q.x, oy, ox, select(0u, 1u, oy < p.oh && ox < p.ow));
}
