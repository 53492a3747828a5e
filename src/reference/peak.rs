//! Reference for `shaders/peak.wgsl`: the values its chains end with, so the rate probe is
//! checked to do all of its work.

/// Chains per thread.
pub const CHAINS: u32 = 32;
/// Chain steps per round and chain.
pub const STEPS: u32 = 4;

/// `main_f32`'s output word for each of `threads` threads.
pub fn peak_f32(threads: u32, iters: u32, m: f32, c: f32) -> Vec<u32> {
    (0..threads)
        .map(|i| {
            let s = (i % 4096) as f32 / 4096.0;
            let mut v: Vec<f32> = (0..CHAINS).map(|j| s + j as f32).collect();
            for _ in 0..iters * STEPS {
                for x in v.iter_mut() {
                    *x = x.mul_add(m, c);
                }
            }
            // Eight vec4s added in order, then the four lanes.
            let mut lanes = [0f32; 4];
            for (l, lane) in lanes.iter_mut().enumerate() {
                *lane = v[l];
                for q in 1..8 {
                    *lane += v[4 * q + l];
                }
            }
            (lanes[0] + lanes[1] + lanes[2] + lanes[3]).to_bits()
        })
        .collect()
}

/// Signed int8 dot product of two packed words (WGSL `dot4I8Packed`).
pub fn dot4_i8(a: u32, b: u32) -> i32 {
    (0..4).map(|l| ((a >> (8 * l)) as u8 as i8 as i32) * ((b >> (8 * l)) as u8 as i8 as i32)).sum()
}

/// `main_dot`'s output word for each of `threads` threads.
pub fn peak_dot(threads: u32, iters: u32, b: u32) -> Vec<u32> {
    (0..threads)
        .map(|i| {
            let h = i.wrapping_mul(0x9e37_79b9);
            let mut v: Vec<i32> = (0..CHAINS).map(|j| (h ^ j.wrapping_mul(0x85eb_ca6b)) as i32).collect();
            for _ in 0..iters * STEPS {
                for x in v.iter_mut() {
                    *x = dot4_i8(*x as u32, b).wrapping_add(*x);
                }
            }
            v.iter().fold(0i32, |s, &x| s.wrapping_add(x)) as u32
        })
        .collect()
}
