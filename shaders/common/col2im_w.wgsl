// The f32 W side of gemm_f32_col2im and gemm_levels_col2im: per tap and K step of 4, each lane
// loads two of the step's 16 W vec4s (W [K, KH*KW*C] as a convolution stores it, item i: row
// k + i / 4, channels 4 (i % 4) .. of the tile; lane L loads items L and 8 + L), which reach every
// lane by subgroupBroadcast, against its four pixels' dY rows from the including kernel's
// load_dy(o, k) (values k .. k + 3 of row o, zeros past M). Uses the including kernel's p, cv
// and `w` (array<vec4<f32>>); K and C multiples of 4.

// Item i of the K step at k of the tap whose columns start at `tap`, channels from c0: W's row
// k + i / 4, channels c0 + 4 (i % 4) .. + 3 (zeros past C).
fn load_w(tap: u32, c0: u32, k: u32, i: u32) -> vec4<f32> {
    let ch = c0 + 4u * (i % 4u);
    if (ch >= cv.c) {
        return vec4<f32>(0.0);
    }
    return w[((k + i / 4u) * p.n + tap + ch) / 4u];
}

// The tap's values of the lane's four pixels (common/col2im_tile.wgsl's fold_taps).
fn tap_values(o: vec4<u32>, tap: u32, c0: u32, lane: u32) -> Px {
    var v: Px;
    for (var k = 0u; k < p.k; k += 4u) {
        let v0 = load_w(tap, c0, k, lane);
        let v1 = load_w(tap, c0, k, 8u + lane);
        let w0 = broadcast_quarter(v0, v1, 0u);
        let w1 = broadcast_quarter(v0, v1, 1u);
        let w2 = broadcast_quarter(v0, v1, 2u);
        let w3 = broadcast_quarter(v0, v1, 3u);
        v.q0 = mac_by_k(v.q0, load_dy(o.x, k), w0, w1, w2, w3);
        v.q1 = mac_by_k(v.q1, load_dy(o.y, k), w0, w1, w2, w3);
        v.q2 = mac_by_k(v.q2, load_dy(o.z, k), w0, w1, w2, w3);
        v.q3 = mac_by_k(v.q3, load_dy(o.w, k), w0, w1, w2, w3);
    }
    return v;
}
