// The tile of the fused input-gradient kernels of a convolution (gemm_int_col2im,
// gemm_f32_col2im): a workgroup is one subgroup of 8 lanes owning 32 consecutive pixels of dX x
// 16 channels (tile = pixel_tile * p.tiles_n + channel_group); lane L owns pixels 4L .. 4L+3 of
// the tile, all 16 channels, kept as one mat4x4 per pixel (column g: channels 4g .. 4g+3). For
// each tap (ky, kx), in col2im's order, a pixel reached by the tap gathers the dY row o it is
// reached from; the tap's 16 columns of W are the same for every pixel of the tile, so each lane
// loads two vec4s of them and subgroup broadcasts share them. The including kernel declares p
// (GemmParams: M = dY's rows, N = kh*kw*C, K = output channels, tiles_n, total_tiles), cv
// (ConvParams) and dx (f32, read-write), and defines tap_values (see fold_taps), its product.

// A lane's four pixels' 16 channels: column g of q<i> holds pixel i's channels 4g .. 4g+3.
struct Px {
    q0: mat4x4<f32>,
    q1: mat4x4<f32>,
    q2: mat4x4<f32>,
    q3: mat4x4<f32>,
}

// The lane's four pixels: their flat indices, batch row base (b * OH), y + pad and x + pad; pixels
// past the image take y + pad = -1 - 2^20, so no tap reaches them.
struct Pixels {
    pix: vec4<u32>,
    bo: vec4<u32>,
    ys: vec4<i32>,
    xs: vec4<i32>,
}

fn tile_pixels(tile: u32, lane: u32) -> Pixels {
    let pix0 = (tile / p.tiles_n) * 32u + 4u * lane;
    let pix = vec4<u32>(pix0, pix0 + 1u, pix0 + 2u, pix0 + 3u);
    let inside = pix < vec4<u32>(cv.batch * cv.h * cv.w);
    let xs = vec4<i32>(pix % cv.w) + i32(cv.pad);
    let ys = select(vec4<i32>(-1048577), vec4<i32>((pix / cv.w) % cv.h) + i32(cv.pad), inside);
    return Pixels(pix, (pix / (cv.w * cv.h)) * cv.oh, ys, xs);
}

// Which of the four pixels tap (ky, kx) reaches (oy * stride = y + pad - ky inside the output,
// likewise ox), and the dY row each is reached from (p.m, which every load reads as zeros, where
// it is not).
struct TapRows {
    o: vec4<u32>,
    ok: vec4<bool>,
}

fn tap_rows(px: Pixels, ky: u32, kx: u32) -> TapRows {
    var ty = px.ys - vec4<i32>(i32(ky));
    var tx = px.xs - vec4<i32>(i32(kx));
    var ok = (ty >= vec4<i32>(0)) & (tx >= vec4<i32>(0));
    if (cv.stride != 1u) {
        let s = vec4<i32>(i32(cv.stride));
        ok = ok & (ty % s == vec4<i32>(0)) & (tx % s == vec4<i32>(0));
        ty = ty / s;
        tx = tx / s;
    }
    ok = ok & (ty < vec4<i32>(i32(cv.oh))) & (tx < vec4<i32>(i32(cv.ow)));
    return TapRows(select(vec4<u32>(p.m), (px.bo + vec4<u32>(ty)) * cv.ow + vec4<u32>(tx), ok), ok);
}

// Four broadcast vec4s as a matrix: column i is lane 4h + i's value of v0 (h = 0, 1) or of v1
// (h = 2, 3): with lane L holding item L of v0 and item 8 + L of v1, column i is item 4h + i.
fn broadcast_quarter(v0: vec4<f32>, v1: vec4<f32>, h: u32) -> mat4x4<f32> {
    if (h == 0u) {
        return mat4x4<f32>(subgroupBroadcast(v0, 0u), subgroupBroadcast(v0, 1u), subgroupBroadcast(v0, 2u),
                           subgroupBroadcast(v0, 3u));
    }
    if (h == 1u) {
        return mat4x4<f32>(subgroupBroadcast(v0, 4u), subgroupBroadcast(v0, 5u), subgroupBroadcast(v0, 6u),
                           subgroupBroadcast(v0, 7u));
    }
    if (h == 2u) {
        return mat4x4<f32>(subgroupBroadcast(v1, 0u), subgroupBroadcast(v1, 1u), subgroupBroadcast(v1, 2u),
                           subgroupBroadcast(v1, 3u));
    }
    return mat4x4<f32>(subgroupBroadcast(v1, 4u), subgroupBroadcast(v1, 5u), subgroupBroadcast(v1, 6u),
                       subgroupBroadcast(v1, 7u));
}

// Adds the tap's values of a pixel it reaches (ok) into the pixel's running sums; a pixel it does
// not reach keeps them (col2im skips such taps).
fn add_px(d: mat4x4<f32>, v: mat4x4<f32>, ok: bool) -> mat4x4<f32> {
    if (ok) {
        return d + v;
    }
    return d;
}

// Stores one pixel's channels c0 .. c0+15 (those below C; nothing past the image).
fn store_px(d: mat4x4<f32>, pix: u32, c0: u32) {
    if (pix >= cv.batch * cv.h * cv.w) {
        return;
    }
    for (var g = 0u; g < 4u; g++) {
        for (var i = 0u; i < 4u; i++) {
            let ch = c0 + 4u * g + i;
            if (ch < cv.c) {
                dx[pix * cv.c + ch] = d[g][i];
            }
        }
    }
}

// Stores the lane's four pixels.
fn store_tile(d: Px, px: Pixels, c0: u32) {
    store_px(d.q0, px.pix.x, c0);
    store_px(d.q1, px.pix.y, c0);
    store_px(d.q2, px.pix.z, c0);
    store_px(d.q3, px.pix.w, c0);
}

// Adds a tap's values of the four pixels.
fn add_tile(d: Px, v: Px, t: TapRows) -> Px {
    return Px(add_px(d.q0, v.q0, t.ok.x), add_px(d.q1, v.q1, t.ok.y), add_px(d.q2, v.q2, t.ok.z),
              add_px(d.q3, v.q3, t.ok.w));
}

// Tile `tile`'s dX, this lane's part: for each tap (ky, kx) in col2im's order, the including
// kernel's tap_values(o, tap, c0, lane) — the tap's values of the lane's four pixels (dY rows o,
// p.m where the tap does not reach the pixel), `tap` the tap's first column of W
// ((ky*KW + kx)*C), c0 the tile's first channel — added where the tap reaches the pixel; then
// the sums stored.
fn fold_taps(tile: u32, lane: u32) {
    let px = tile_pixels(tile, lane);
    let c0 = (tile % p.tiles_n) * 16u;
    var d: Px;
    for (var ky = 0u; ky < cv.kh; ky++) {
        for (var kx = 0u; kx < cv.kw; kx++) {
            let t = tap_rows(px, ky, kx);
            d = add_tile(d, tap_values(t.o, (ky * cv.kw + kx) * cv.c, c0, lane), t);
        }
    }
    store_tile(d, px, c0);
}
