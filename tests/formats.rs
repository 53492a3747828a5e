//! Formats: every code decodes to what the spec says (host and device), encode is exact
//! round-to-nearest-even against a brute-force oracle over an exponent sweep (subnormals, ties,
//! saturation), and the WGSL mirrors agree with the host code by code.

mod common;
use common::{assert_f32_bits_eq, assert_u32_eq, gpu};
use lowbit::format::{fp8, Format};
use lowbit::kernels::format_check::FormatCheck;
use lowbit::{reference, rng};

/// Spec value of an FP8 code, computed independently of `fp8.rs` (f64 formula).
fn fp8_spec(code: u32, ebits: u32, mbits: u32, bias: i32, has_inf: bool) -> f64 {
    let s = if code & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = ((code >> mbits) & ((1 << ebits) - 1)) as i32;
    let m = (code & ((1 << mbits) - 1)) as f64;
    let emax = (1 << ebits) - 1;
    if has_inf && e == emax {
        return if m == 0.0 { s * f64::INFINITY } else { f64::NAN };
    }
    if !has_inf && code & 0x7f == 0x7f {
        return f64::NAN;
    }
    let frac = m / (1u32 << mbits) as f64;
    if e == 0 {
        s * frac * 2f64.powi(1 - bias)
    } else {
        s * (1.0 + frac) * 2f64.powi(e - bias)
    }
}

#[test]
fn fp8_all_256_codes_decode_to_the_spec_on_host_and_device() {
    for (f, spec) in [(Format::Fp8E4M3, (4, 3, 7, false)), (Format::Fp8E5M2, (5, 2, 15, true))] {
        let codes: Vec<u32> = (0..256).collect();
        let host = reference::format_check::decode(&codes, f);
        for &c in &codes {
            let want = fp8_spec(c, spec.0, spec.1, spec.2, spec.3);
            let got = host[c as usize] as f64;
            assert!(got == want || (got.is_nan() && want.is_nan()), "{f} code {c:#04x}: host {got} spec {want}");
        }
        let dev = FormatCheck::new(gpu(), f).unwrap().decode(gpu(), &codes).unwrap();
        assert_f32_bits_eq(&format!("{f} device decode"), &dev, &host);
    }
}

#[test]
fn int_and_log4_codes_decode_on_device_as_on_host() {
    for f in [Format::Int8, Format::Int4, Format::Int3, Format::Int2, Format::Log4] {
        let codes: Vec<u32> = (0..(1u32 << f.bits())).collect();
        let host = reference::format_check::decode(&codes, f);
        let dev = FormatCheck::new(gpu(), f).unwrap().decode(gpu(), &codes).unwrap();
        assert_f32_bits_eq(&format!("{f} device decode"), &dev, &host);
    }
    assert_eq!(Format::Int8.decode(0x81), -127.0);
    assert_eq!(Format::Int4.decode(0x9), -7.0);
    assert_eq!(Format::Log4.decode(0xF), -64.0);
    assert_eq!(Format::Int3.decode(0xD), -3.0);
    assert_eq!(Format::Int2.decode(0x3), -1.0);
}

/// Brute-force round-to-nearest-even over all finite codes of a format, with saturation.
fn oracle_rne(x: f32, f: Format) -> u32 {
    let finite: Vec<(u32, f64)> =
        (0..(1u32 << f.bits())).map(|c| (c, f.decode(c) as f64)).filter(|(_, v)| v.is_finite()).collect();
    // Saturation: magnitudes past the largest finite value clamp to it.
    let xv = (x as f64).clamp(-(f.top() as f64), f.top() as f64);
    let (mut best, mut best_d) = (0u32, f64::INFINITY);
    for &(c, v) in &finite {
        let d = (v - xv).abs();
        let even = |c: u32| match f {
            // Ties go to the even mantissa (the code's low bit), as IEEE's roundTiesToEven.
            Format::Fp8E4M3 | Format::Fp8E5M2 => c & 1 == 0,
            _ => (f.decode(c) as i64) % 2 == 0,
        };
        if d < best_d || (d == best_d && even(c) && !even(best)) {
            best = c;
            best_d = d;
        }
    }
    // Both zeros are +0; never return the negative zero code.
    if f.decode(best) == 0.0 {
        0
    } else {
        best
    }
}

/// An exponent sweep around a format's range: exact grid values, midpoints (ties), and values
/// just off the midpoints, plus random mantissas, on both signs.
fn sweep(f: Format) -> Vec<f32> {
    let mut xs = Vec::new();
    let mut grid: Vec<f64> =
        (0..(1u32 << f.bits())).map(|c| f.decode(c) as f64).filter(|v| v.is_finite() && *v >= 0.0).collect();
    grid.sort_by(|a, b| a.partial_cmp(b).unwrap());
    grid.dedup();
    for w in grid.windows(2) {
        let (a, b) = (w[0] as f32, w[1] as f32);
        let mid = ((w[0] + w[1]) / 2.0) as f32;
        for v in [a, b, mid, f32::from_bits(mid.to_bits() + 1), f32::from_bits(mid.to_bits() - 1)] {
            xs.push(v);
            xs.push(-v);
        }
    }
    let k = rng::key(5, 5);
    let top = f.qmax();
    for e in -30..=(top.log2() as i32 + 3) {
        for j in 0..16 {
            let m = rng::draw(k, (e + 100) as u32 * 16 + j) & 0x7f_ffff;
            let v = f32::from_bits((((e + 127) as u32) << 23) | m);
            xs.push(v);
            xs.push(-v);
        }
    }
    xs.extend([0.0, -0.0, f32::from_bits(1), -f32::from_bits(0x7f_ffff), top * 1.02, -top * 4.0, 1e38]);
    xs
}

#[test]
fn fp8_and_int_encode_is_exact_rne_over_an_exponent_sweep() {
    for f in [Format::Fp8E4M3, Format::Fp8E5M2, Format::Int8, Format::Int4, Format::Int3, Format::Int2] {
        let xs = sweep(f);
        let host = reference::format_check::encode(&xs, f, false, 0);
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(
                host[i],
                oracle_rne(x, f),
                "{f}: encode({x:e} = {:#x}) gives {:#x}, oracle {:#x}",
                x.to_bits(),
                host[i],
                oracle_rne(x, f)
            );
        }
        let dev = FormatCheck::new(gpu(), f).unwrap().encode(gpu(), &xs, false, 0).unwrap();
        assert_u32_eq(&format!("{f} device encode (nearest)"), &dev, &host);
    }
}

#[test]
fn log4_nearest_is_nearest_in_linear_domain_with_ties_up() {
    for &(y, want) in &[
        (0.49f32, 0.0f32),
        (0.5, 0.0),
        (0.51, 1.0),
        (1.49, 1.0),
        (1.5, 2.0),
        (2.99, 2.0),
        (3.0, 4.0),
        (47.9, 32.0),
        (48.0, 64.0),
        (70.0, 64.0),
    ] {
        assert_eq!(Format::Log4.decode(Format::Log4.quantize(y, 1.0, false, 0)), want, "log4 nearest of {y}");
        assert_eq!(Format::Log4.decode(Format::Log4.quantize(-y, 1.0, false, 0)), -want, "log4 nearest of {}", -y);
    }
}

#[test]
fn device_encode_matches_host_for_every_format_nearest_and_stochastic() {
    for f in Format::ALL {
        let mut xs = sweep(f);
        xs.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN]);
        let dev_kernel = FormatCheck::new(gpu(), f).unwrap();
        for stochastic in [false, true] {
            let key = rng::key(11, f.id());
            let host = reference::format_check::encode(&xs, f, stochastic, key);
            let dev = dev_kernel.encode(gpu(), &xs, stochastic, key).unwrap();
            assert_u32_eq(&format!("{f} device encode (stochastic={stochastic})"), &dev, &host);
        }
    }
}

#[test]
fn a_fraction_equal_to_its_stochastic_draw_rounds_down_and_one_step_more_rounds_up() {
    // Stochastic rounding goes up where the fraction times 2^24 exceeds the element's 24-bit draw;
    // random values meet equality once in 2^24 draws, so these are built on it: x = r/2^24 (the
    // fraction is the draw r: down), -(r + 1)/2^24 (one more: up), and 2 + (r with its low two bits
    // cleared)/2^24 (2's ulp is 4/2^24: equal to the draw where r is a multiple of 4, below it
    // otherwise; down to 2 either way).
    let key = rng::key(5, 9);
    let xs: Vec<f32> = (0..3000u32)
        .map(|i| {
            let r = rng::draw24(key, i);
            match i % 3 {
                0 => r as f32 / 16_777_216.0,
                1 => -((r + 1) as f32) / 16_777_216.0,
                _ => 2.0 + (r & !3) as f32 / 16_777_216.0,
            }
        })
        .collect();
    for f in Format::ALL {
        let host = reference::format_check::encode(&xs, f, true, key);
        let dev = FormatCheck::new(gpu(), f).unwrap().encode(gpu(), &xs, true, key).unwrap();
        assert_u32_eq(&format!("{f} device encode at the draw"), &dev, &host);
        if matches!(f, Format::Int8 | Format::Int4) {
            for (i, (&x, &c)) in xs.iter().zip(&host).enumerate() {
                let r = rng::draw24(key, i as u32);
                let want = [0.0, -1.0, 2.0][i % 3];
                assert_eq!(f.decode(c), want, "{f}: x = {x:e} with draw {r}");
            }
        }
    }
}

#[test]
fn nonfinite_inputs_follow_the_documented_rule() {
    let q = |f: Format, x: f32| f.quantize(x, 1.0, false, 0);
    assert_eq!(q(Format::Int8, f32::NAN), 0);
    assert_eq!(Format::Int8.decode(q(Format::Int8, f32::INFINITY)), 127.0);
    assert_eq!(Format::Int4.decode(q(Format::Int4, f32::NEG_INFINITY)), -7.0);
    assert_eq!(q(Format::Fp8E4M3, f32::NAN), fp8::NAN_CODE);
    assert_eq!(Format::Fp8E4M3.decode(q(Format::Fp8E4M3, f32::INFINITY)), 448.0);
    assert_eq!(Format::Fp8E5M2.decode(q(Format::Fp8E5M2, f32::NEG_INFINITY)), f32::NEG_INFINITY);
    assert_eq!(q(Format::Log4, f32::NAN), 0);
    assert_eq!(Format::Log4.decode(q(Format::Log4, f32::NEG_INFINITY)), -64.0);
}

#[test]
fn device_recip_and_rng_match_the_host() {
    let k = FormatCheck::new(gpu(), Format::Int8).unwrap();
    let key = rng::key(3, 1);
    let mut xs: Vec<f32> =
        (0..20_000u32).map(|i| f32::from_bits(((1 + i % 254) << 23) | (rng::draw(key, i) & 0x7f_ffff))).collect();
    xs.extend([0.0, -1.0, f32::from_bits(1), f32::INFINITY, f32::NAN, 2f32.powi(126), 2f32.powi(127) * 1.5]);
    // Every mantissa of four fraction bits at every exponent: those of three take the device's
    // table (NVFP4's group scales are E4M3 values times a power of two), the others and one with
    // the last bit set its long division.
    for exp in 1..255u32 {
        xs.extend((0..16u32).map(|k| f32::from_bits((exp << 23) | (k << 19))));
        xs.push(f32::from_bits((exp << 23) | (5 << 20) | 1));
    }
    assert_f32_bits_eq("device recip_rne", &k.recip(gpu(), &xs).unwrap(), &reference::format_check::recip(&xs));
    // The inverse of a power-of-two scale from its exponent alone (the MX formats' group scales,
    // NVFP4's tensor scale): recip_rne's value at every positive normal power of two, 0 where
    // the inverse is subnormal (2^127).
    let pow2: Vec<f32> = (1..255u32).map(|e| f32::from_bits(e << 23)).collect();
    assert_f32_bits_eq(
        "device recip_pow2",
        &k.pow2_recip(gpu(), &pow2).unwrap(),
        &reference::format_check::recip(&pow2),
    );
    assert_eq!(reference::format_check::recip(&[2f32.powi(127)]), [0.0]);
    // Every mantissa, at exponents 0 and -126 (the smallest normal x, whose inverses lie near
    // 2^126): the device's quotient (the table or its long division) is the reference's, which
    // depends on the mantissa alone.
    for exp in [127u32, 1] {
        let every: Vec<f32> = (0..1u32 << 23).map(|m| f32::from_bits((exp << 23) | m)).collect();
        assert_f32_bits_eq(
            "device recip_rne, every mantissa",
            &k.recip(gpu(), &every).unwrap(),
            &reference::format_check::recip(&every),
        );
    }
    for n in [1usize, 1757, 100_000] {
        assert_u32_eq("device rng", &k.rng(gpu(), key, n).unwrap(), &reference::format_check::rng(key, n));
    }
}

/// The block-scaled formats' scale rules (src/format/scale.rs), worked by hand: the scale is
/// rounded up onto its grid so the group's largest magnitude never exceeds the top code; the
/// device's two-pass quantizer (`quantize` from the maxima) gives the same bits.
#[test]
fn block_scales_round_up_onto_their_grids_on_host_and_device() {
    use lowbit::format::{group_scale, nvfp4_tensor_scale};
    let p2 = |e: i32| 2f32.powi(e);
    // (format, group amax, tensor amax, expected scale).
    let cases: Vec<(Format, f32, f32, f32)> = vec![
        // MXFP4 (E8M0, top 6): 6 fits a scale of 1 exactly; a hair above needs 2; 3 → ½;
        // 7/6 → 2; 0 and a subnormal-scaled amax are the zero group.
        (Format::Mxfp4, 6.0, 0.0, 1.0),
        (Format::Mxfp4, f32::from_bits(6f32.to_bits() + 1), 0.0, 2.0),
        (Format::Mxfp4, 3.0, 0.0, 0.5),
        (Format::Mxfp4, 7.0, 0.0, 2.0),
        (Format::Mxfp4, 0.0, 0.0, 0.0),
        (Format::Mxfp4, 1e-38, 0.0, 0.0),
        // MXFP8 (E8M0, top 448): 448 → 1, 449 → 2, 1 → 2^-8 (1·2^8 = 256 ≤ 448), the largest
        // f32 → 2^120, and a scale under f32's normal range → the zero group.
        (Format::Mxfp8, 448.0, 0.0, 1.0),
        (Format::Mxfp8, 449.0, 0.0, 2.0),
        (Format::Mxfp8, 1.0, 0.0, p2(-8)),
        (Format::Mxfp8, f32::MAX, 0.0, p2(120)),
        (Format::Mxfp8, 1e-35, 0.0, p2(-125)),
        (Format::Mxfp8, 1e-36, 0.0, 0.0),
        // NVFP4 (E4M3 × a power of two per tensor, top 6): a tensor whose amax is 6·448 is past
        // the limit 2677.5 (6·448 less 2^-8), so S = 2. A block of 6 gets 0.5·2 = 1; 7 (7/6/2 =
        // 0.583) the E4M3 step above, 0.625 (scale 1.25); the tensor's own maximum 224·2 = 448,
        // where 2688·(1/448) rounds above 6, so one E4M3 step up, 240 (scale 480); a tiny block
        // the smallest E4M3 value 2^-9 (scale 2^-8).
        (Format::Nvfp4, 6.0, 2688.0, 1.0),
        (Format::Nvfp4, 7.0, 2688.0, 1.25),
        (Format::Nvfp4, 2688.0, 2688.0, 480.0),
        (Format::Nvfp4, 2600.0, 2600.0, 448.0),
        (Format::Nvfp4, 1e-3, 2688.0, p2(-8)),
        // A tensor of 3000 needs S = 2 (3000/2688 > 1): its top block 3000/6/2 = 250 → 256.
        (Format::Nvfp4, 3000.0, 3000.0, 512.0),
        (Format::Nvfp4, 0.0, 3000.0, 0.0),
        (Format::Nvfp4, 1.0, 0.0, 0.0),
    ];
    assert_eq!(nvfp4_tensor_scale(2677.5), 1.0);
    assert_eq!(nvfp4_tensor_scale(2678.0), 2.0);
    assert_eq!(nvfp4_tensor_scale(0.0), 0.0);
    for &(f, amax, tensor, want) in &cases {
        let (s, inv) = group_scale(amax, tensor, f);
        assert_eq!(s, want, "{f}: amax {amax:e} in a tensor of {tensor:e}");
        if s > 0.0 {
            assert_eq!(inv, 1.0 / s, "{f}: inverse of {s}");
            assert!(amax * inv <= f.qmax(), "{f}: amax {amax} exceeds the top code at scale {s}");
        }
    }
    // Device: the two-pass quantizer's second launch, which turns maxima into scales, on the same
    // maxima (NVFP4: the tensor's maximum follows the groups', as absmax leaves it), one block
    // holding ±amax: its scale, and the codes the reference packs with the rule's inverse.
    let g = gpu();
    for f in Format::BLOCK_SCALED {
        let block = f.block().unwrap() as usize;
        let l =
            lowbit::scheme::QuantLayout::new(1, block, f, lowbit::scheme::Granularity::PerBlock(block as u32)).unwrap();
        let k = lowbit::kernels::quantize::Quantize::new(g, f).unwrap();
        let rows: Vec<_> = cases.iter().filter(|c| c.0 == f).collect();
        for &&(_, amax, tensor, want) in &rows {
            let mut bits = vec![amax.to_bits()];
            if f.needs_tensor_amax() {
                bits.push(tensor.to_bits());
            }
            let x: Vec<f32> = (0..block).map(|i| if i % 2 == 0 { amax } else { -amax * 0.37 }).collect();
            let a = lowbit::GpuBuffer::from_slice(g, "amax", &bits).unwrap();
            let xb = lowbit::GpuBuffer::from_slice(g, "x", &x).unwrap();
            let (codes, s) = (
                lowbit::GpuBuffer::<u32>::zeros(g, "c", l.words()).unwrap(),
                lowbit::GpuBuffer::<f32>::zeros(g, "s", 1).unwrap(),
            );
            let r = lowbit::scheme::Rounding::Nearest;
            common::submit_with(|e| k.encode(g, e, &xb, &a, &l, r, 1, &codes, &s).unwrap());
            assert_eq!(s.read(g).unwrap()[0].to_bits(), want.to_bits(), "device {f}: amax {amax:e}");
            let (_, want_inv) = group_scale(amax, tensor, f);
            let want_codes = lowbit::reference::quantize::quantize(&common::as_adapter_sees(&x), &[want_inv], &l, r);
            assert_eq!(codes.read(g).unwrap(), want_codes, "device {f} codes (inverse scale): amax {amax:e}");
        }
    }
    // A block-scaled format takes its own block only.
    use lowbit::scheme::{Granularity, QuantLayout};
    assert!(QuantLayout::new(4, 64, Format::Mxfp8, Granularity::PerRow).is_err());
    assert!(QuantLayout::new(4, 64, Format::Nvfp4, Granularity::PerBlock(32)).is_err());
    assert_eq!(QuantLayout::new(4, 64, Format::Nvfp4, Granularity::PerBlock(16)).unwrap().amax_len(), 17);
}
