// dequantize: packed codes and group scales -> f32, out = ftz(decode(code) * s), a non-finite
// code's own value whatever s (fmt_dequantize).
// Entry `main`: a thread per packed word, a scalar store per code (any layout).
// Entries `main_v4` (a thread per word; GPUs) and `main_teams` (CPU adapters: the words in
// common/teams.wgsl's layout, a team's stores on consecutive vec4s as the copy's are) store each
// word's codes (4, 8 or 16) as vec4s, for layouts whose rows are whole words
// (src/kernels/dequantize.rs, Dequantize::vectorised): word w then holds values w·per_word .. of
// out, and lies in one scale group (blocks are powers of two of whole words), row·row_mul + (col
// >> p.aux0) (aux0: log2 of the block, or 31 where the group is the row's or the tensor's: col <
// 2^31, so 0).
// main_teams finds a word's row once per thread and then steps it along as the thread walks its
// words (llvmpipe divides lane by lane; the row loop's subtractions end since words_per_row > 0).
// Reference: src/reference/dequantize.rs.
// Bindings: 0 params (QuantParams), 1 codes (read u32), 2 scales (read f32), 3 out (read_write f32;
// out4 for the vec4 entries).

@group(0) @binding(0) var<uniform> p: QuantParams;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// out again, as vec4s (the vec4 entries only).
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tile = flat_workgroup(wg, nwg);
    let row = tile / p.tiles_per_row;
    let word = (tile % p.tiles_per_row) * WG + lid;
    if (tile >= p.total_tiles || word >= p.words_per_row) {
        return;
    }
    let per_word = fmt_per_word();
    let b = fmt_bits();
    let mask = (1u << b) - 1u;
    let col0 = word * per_word;
    let s = scales[group_of(p, row, col0)];
    let packed = codes[row * p.words_per_row + word];
    for (var i = 0u; i < per_word; i++) {
        let col = col0 + i;
        if (col < p.cols) {
            out[row * p.cols + col] = fmt_dequantize((packed >> (i * b)) & mask, s);
        }
    }
}

// Word w (in row `row`, word wc of it) stored as per_word / 4 vec4s.
fn store_word4(w: u32, row: u32, wc: u32) {
    let b = fmt_bits();
    let mask = (1u << b) - 1u;
    let quads = fmt_per_word() / 4u;
    let s = scales[row * p.row_mul + ((wc * fmt_per_word()) >> p.aux0)];
    let packed = codes[w];
    for (var q = 0u; q < quads; q++) {
        let sh = q * 4u * b;
        out4[w * quads + q] = vec4<f32>(
            fmt_dequantize((packed >> sh) & mask, s),
            fmt_dequantize((packed >> (sh + b)) & mask, s),
            fmt_dequantize((packed >> (sh + 2u * b)) & mask, s),
            fmt_dequantize((packed >> (sh + 3u * b)) & mask, s),
        );
    }
}

@compute @workgroup_size(256)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let w = flat_workgroup(wg, nwg) * WG + lid;
    if (w >= p.rows * p.words_per_row) {
        return;
    }
    let row = w / p.words_per_row;
    store_word4(w, row, w - row * p.words_per_row);
}

@compute @workgroup_size(256)
fn main_teams(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let span = team_span(wg, nwg, lid, p.rows * p.words_per_row);
    if (span.x >= span.y) {
        return;
    }
    var row = span.x / p.words_per_row;
    var wc = span.x - row * p.words_per_row;
    for (var w = span.x; w < span.y; w += TEAM) {
        store_word4(w, row, wc);
        wc += TEAM;
        while (wc >= p.words_per_row) {
            wc -= p.words_per_row;
            row++;
        }
    }
}
