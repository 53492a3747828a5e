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
    assert_f32_bits_eq("device recip_rne", &k.recip(gpu(), &xs).unwrap(), &reference::format_check::recip(&xs));
    for n in [1usize, 1757, 100_000] {
        assert_u32_eq("device rng", &k.rng(gpu(), key, n).unwrap(), &reference::format_check::rng(key, n));
    }
}
