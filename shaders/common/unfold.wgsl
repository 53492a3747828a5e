// The unfold of one row of cols by one thread, shared by im2col and im2col_quantize (after
// conv.wgsl). The including kernel reads value i of x through its `unfold_src(i)` and stores value
// o of cols through its `put_col(o, v)`; unfold_row4 (channels a multiple of 4) reads and stores
// vec4s through `unfold_src4(i)` and `put_col4(o, v)` (values 4i .., 4o ..).

// Where row `row` of cols reads x: its batch index b, the y of its first tap row (oy·stride −
// pad), and the run of taps along x inside the image [kx_lo, kx_hi) with x0, the x of tap 0.
struct RowTaps {
    b: u32,
    y0: i32,
    x0: i32,
    kx_lo: u32,
    kx_hi: u32,
}

fn row_taps(g: ConvParams, row: u32) -> RowTaps {
    let ox = row % g.ow;
    let oy = (row / g.ow) % g.oh;
    let x0 = i32(ox * g.stride) - i32(g.pad);
    let kx_lo = u32(clamp(-x0, 0, i32(g.kw)));
    let kx_hi = u32(clamp(i32(g.w) - x0, i32(kx_lo), i32(g.kw)));
    return RowTaps(row / (g.ow * g.oh), i32(oy * g.stride) - i32(g.pad), x0, kx_lo, kx_hi);
}

// Row `row` of cols (< batch·oh·ow), its values in order through put_col: per tap row zeros, one
// run copied from x, zeros (along x the taps inside the image are one run [kx_lo, kx_hi), and
// their values one run of x's memory), with no per-value test.
fn unfold_row(g: ConvParams, row: u32) {
    let t = row_taps(g, row);
    let lead = t.kx_lo * g.c;
    let span = (t.kx_hi - t.kx_lo) * g.c;
    let tap_row = g.kw * g.c;
    var o = row * g.kh * tap_row;
    for (var ky = 0u; ky < g.kh; ky++) {
        let y = t.y0 + i32(ky);
        let end = o + tap_row;
        if (y >= 0 && u32(y) < g.h) {
            for (let stop = o + lead; o < stop; o++) {
                put_col(o, 0.0);
            }
            var at = ((t.b * g.h + u32(y)) * g.w + u32(t.x0 + i32(t.kx_lo))) * g.c;
            for (let stop = o + span; o < stop; o++) {
                put_col(o, unfold_src(at));
                at++;
            }
        }
        for (; o < end; o++) {
            put_col(o, 0.0);
        }
    }
}

// unfold_row by vec4s, for channels a multiple of 4 (every run then starts and ends on a whole
// vec4): the same values in the same places.
fn unfold_row4(g: ConvParams, row: u32) {
    let t = row_taps(g, row);
    let cq = g.c / 4u;
    let lead = t.kx_lo * cq;
    let span = (t.kx_hi - t.kx_lo) * cq;
    let tap_row = g.kw * cq;
    var o = row * g.kh * tap_row;
    for (var ky = 0u; ky < g.kh; ky++) {
        let y = t.y0 + i32(ky);
        let end = o + tap_row;
        if (y >= 0 && u32(y) < g.h) {
            for (let stop = o + lead; o < stop; o++) {
                put_col4(o, vec4<f32>());
            }
            var at = ((t.b * g.h + u32(y)) * g.w + u32(t.x0 + i32(t.kx_lo))) * cq;
            for (let stop = o + span; o < stop; o++) {
                put_col4(o, unfold_src4(at));
                at++;
            }
        }
        for (; o < end; o++) {
            put_col4(o, vec4<f32>());
        }
    }
}
