// The tile of the fused input-gradient kernels of a convolution (gemm_int_col2im,
// gemm_f32_col2im, gemm_fp8_col2im): a workgroup is one subgroup of 8 lanes owning 32 pixels of
// dX x 16 channels (tile = pixel_tile * p.tiles_n + channel_group); lane L owns pixels 4L .. 4L+3
// of the tile, all 16 channels, kept as one mat4x4 per pixel (column g: channels 4g .. 4g+3).
// Pixels are numbered class by class, a class being the pixels of one (y mod stride, x mod
// stride), each class padded to whole tiles (one class, row-major order, at stride 1): the taps
// that reach a pixel depend on its class (oy * stride = y + pad - ky), so a tile's pixels share
// them and a tap that reaches none of them is skipped. For each tap (ky, kx), in col2im's order,
// a pixel reached by the tap gathers the dY row o it is reached from; the tap's 16 columns of W
// are the same for every pixel of the tile, so each lane loads two vec4s of them and subgroup
// broadcasts share them. The including kernel declares p (GemmParams: M = dY's rows, N =
// kh*kw*C, K = output channels, tiles_n, total_tiles), cv (ConvParams) and dx (f32, read-write),
// and defines tap_values (see fold_taps), its product.

// A lane's four pixels' 16 channels: column g of q<i> holds pixel i's channels 4g .. 4g+3.
struct Px {
    q0: mat4x4<f32>,
    q1: mat4x4<f32>,
    q2: mat4x4<f32>,
    q3: mat4x4<f32>,
}

// The lane's four pixels: their flat indices (batch * H * W past their class), batch row base
// (b * OH), y + pad and x + pad; pixels past their class take y + pad = -1 - 2^20, so no tap
// reaches them.
struct Pixels {
    pix: vec4<u32>,
    bo: vec4<u32>,
    ys: vec4<i32>,
    xs: vec4<i32>,
}

// Pixels of class coordinate r (y mod stride, or x) along an axis of n pixels.
fn class_extent(n: u32, r: u32) -> u32 {
    if (r >= n) {
        return 0u;
    }
    return (n - r + cv.stride - 1u) / cv.stride;
}

fn tile_pixels(tile: u32, lane: u32) -> Pixels {
    // The tile's class (cls = ry * stride + rx) and its first pixel within the class.
    var pt = tile / p.tiles_n;
    var cls = 0u;
    var cy = 0u;
    var cx = 0u;
    for (; cls < cv.stride * cv.stride; cls++) {
        cy = class_extent(cv.h, cls / cv.stride);
        cx = class_extent(cv.w, cls % cv.stride);
        let tiles = (cv.batch * cy * cx + 31u) / 32u;
        if (pt < tiles) {
            break;
        }
        pt -= tiles;
    }
    let i0 = pt * 32u + 4u * lane;
    let idx = vec4<u32>(i0, i0 + 1u, i0 + 2u, i0 + 3u);
    let inside = idx < vec4<u32>(cv.batch * cy * cx);
    let per_image = max(cy * cx, 1u);
    let b = idx / per_image;
    let y = (cls / cv.stride) + cv.stride * ((idx % per_image) / max(cx, 1u));
    let x = (cls % cv.stride) + cv.stride * ((idx % per_image) % max(cx, 1u));
    let pix = select(vec4<u32>(cv.batch * cv.h * cv.w), (b * cv.h + y) * cv.w + x, inside);
    let ys = select(vec4<i32>(-1048577), vec4<i32>(y) + i32(cv.pad), inside);
    return Pixels(pix, b * cv.oh, ys, vec4<i32>(x) + i32(cv.pad));
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

// One pixel's 16 channels through one K step of 4 in f32 (gemm_f32_col2im, gemm_fp8_col2im):
// w<kk> holds the channels at k + kk (column g: channels 4g .. 4g+3), a the pixel's dY values at
// k .. k+3; every value gets v + w * a, k by k (a multiply, then an add: the order and roundings
// of common/lanes.wgsl's quad_step).
fn mac_by_k(acc: mat4x4<f32>, a: vec4<f32>, w0: mat4x4<f32>, w1: mat4x4<f32>, w2: mat4x4<f32>, w3: mat4x4<f32>)
    -> mat4x4<f32> {
    var m = acc + w0 * a.x;
    m = m + w1 * a.y;
    m = m + w2 * a.z;
    return m + w3 * a.w;
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
            // A tap that reaches none of the tile's pixels adds nothing (the same for every lane).
            if (subgroupAny(any(t.ok))) {
                d = add_tile(d, tap_values(t.o, (ky * cv.kw + kx) * cv.c, c0, lane), t);
            }
        }
    }
    store_tile(d, px, c0);
}
