//! The elementary functions of the chain, the same bits on every machine.
//!
//! `f64::ln`, `exp`, `ln_1p` and `powf` call the platform's C library,
//! whose results may differ in the last bit between machines: glibc picks
//! its routines by the CPU's features, and on this project's machines its
//! FMA and plain variants disagree for about 7 in 10,000 arguments of `exp`
//! and `pow` and 7 in 100,000 of `log1p` (measured by running the same
//! inputs with `GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA`). A sample
//! must be a pure function of (dataset, configuration, spec, index) on any
//! worker (invariant 1), so everything a sample computes goes through these
//! functions instead: the `libm` crate's (a Rust port of musl's and
//! FreeBSD's), which use only IEEE operations Rust never fuses, so they
//! give the same bits on every CPU and operating system. Their error is
//! below one unit in the last place, as the C library's is. Clippy's
//! `disallowed-methods` (`clippy.toml`) refuses the `f64` methods in the
//! crate, outside tests.
//!
//! The standard normal distribution is here too ([`normal_cdf`],
//! [`normal_quantile`]), for the same reason: the statistics crates compute
//! it with the platform's functions.

/// The natural logarithm.
#[inline]
pub fn ln(x: f64) -> f64 {
    libm::log(x)
}

/// ln(1 + x), accurate for small x.
#[inline]
pub fn ln_1p(x: f64) -> f64 {
    libm::log1p(x)
}

/// [`ln_1p`] of each of `x`, bit for bit, computed side by side when
/// every value lies where libm's `log1p` needs no range reduction:
/// −0.2929 ≤ x < 0.4142 (1 + x within [√2/2, √2)) and |x| ≥ 2⁻⁵³, which
/// covers yearly growth rates. There `log1p` is one fixed sequence of IEEE
/// operations with k = 0 and no correction term, repeated here operation
/// for operation (no fused multiply-add: Rust never contracts), so the
/// compiler can run it in vector lanes; otherwise each value goes to
/// [`ln_1p`].
#[inline(always)]
pub fn ln_1p_each<const N: usize>(x: [f64; N]) -> [f64; N] {
    side_by_side(x, ln_1p_unreduced, ln_1p_core, ln_1p)
}

/// `core` of each of `x` when `usual` holds for every one, else `one` of
/// each: plain loops without early exits, which the compiler vectorises.
#[inline(always)]
fn side_by_side<const N: usize>(
    x: [f64; N],
    usual: impl Fn(f64) -> bool,
    core: impl Fn(f64) -> f64,
    one: impl Fn(f64) -> f64,
) -> [f64; N] {
    let all_usual = x.iter().fold(true, |all, &v| all & usual(v));
    let mut out = [0.0; N];
    if all_usual {
        for (out, &x) in out.iter_mut().zip(&x) {
            *out = core(x);
        }
    } else {
        for (out, &x) in out.iter_mut().zip(&x) {
            *out = one(x);
        }
    }
    out
}

/// Whether libm's `log1p(x)` takes its path without range reduction (k = 0)
/// and without an early return.
#[inline(always)]
fn ln_1p_unreduced(x: f64) -> bool {
    let hx = (x.to_bits() >> 32) as u32;
    let large_enough = (hx & 0x7fff_ffff) >= 0x3ca0_0000;
    let in_range = if hx >> 31 == 0 { hx < 0x3fda_827a } else { hx <= 0xbfd2_bec4 };
    large_enough & in_range
}

/// libm 0.2.16's `log1p` on its k = 0 path (src/math/log1p.rs), the same
/// constants (given by their bits there) and operations in the same order.
#[inline(always)]
fn ln_1p_core(x: f64) -> f64 {
    // With k = 0 and no correction term c, log1p's last line
    // `s·(hfsq + R) + (dk·LN2_LO + c) − hfsq + f + dk·LN2_HI` is log's, with
    // f = x: both middle terms are +0.
    log_kernel(x, 0.0)
}

/// The last step of libm 0.2.16's `log` and `log1p`: ln(1 + f) + k·ln 2 for
/// f in [√2/2 − 1, √2 − 1), by the same constants (given by their bits
/// there) and operations in the same order.
#[inline(always)]
fn log_kernel(f: f64, dk: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const LG1: f64 = f64::from_bits(0x3fe5_5555_5555_5593);
    const LG2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04);
    const LG3: f64 = f64::from_bits(0x3fd2_4924_9422_9359);
    const LG4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af);
    const LG5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de);
    const LG6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f);
    const LG7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244);
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

/// [`ln`] of each of `x`, bit for bit, computed side by side when every
/// value is a positive, normal, finite number (the usual case: ratios of
/// positive quantities). There libm's `log` is one fixed sequence of
/// integer and IEEE operations (its argument reduction is done on the bits,
/// without a branch), repeated here operation for operation so the
/// compiler can run it in vector lanes; otherwise each value goes to [`ln`].
#[inline(always)]
pub fn ln_each<const N: usize>(x: [f64; N]) -> [f64; N] {
    side_by_side(x, ln_usual, ln_core, ln)
}

/// Whether libm's `log(x)` takes its main path: x positive, normal and
/// finite (1.0, which it returns early as +0, gives +0 there too).
#[inline(always)]
fn ln_usual(x: f64) -> bool {
    let hx = (x.to_bits() >> 32) as u32;
    (0x0010_0000..0x7ff0_0000).contains(&hx)
}

/// libm 0.2.16's `log` on its main path (src/math/log.rs), the same
/// constants and operations in the same order.
#[inline(always)]
fn ln_core(x: f64) -> f64 {
    let ui = x.to_bits();
    // Reduce x into [√2/2, √2): x = 2ᵏ · (1 + f).
    let hx = ((ui >> 32) as u32).wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
    let k = (hx >> 20) as i32 - 0x3ff;
    let hx = (hx & 0x000f_ffff) + 0x3fe6_a09e;
    let x = f64::from_bits((u64::from(hx) << 32) | (ui & 0xffff_ffff));
    log_kernel(x - 1.0, f64::from(k))
}

/// eˣ.
#[inline]
pub fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// eˣ − 1, accurate for small x.
#[inline]
pub fn exp_m1(x: f64) -> f64 {
    libm::expm1(x)
}

/// [`exp_m1`] of each of `x`, bit for bit, computed side by side when
/// every |x| ≤ ½ ln 2 (yearly growth rates' logarithms): there libm's
/// `expm1` needs no argument reduction and is one fixed sequence of IEEE
/// operations, repeated here operation for operation (it returns x itself
/// when |x| < 2⁻⁵⁴, chosen here lane by lane); otherwise each value goes to
/// [`exp_m1`].
#[inline(always)]
pub fn exp_m1_each<const N: usize>(x: [f64; N]) -> [f64; N] {
    side_by_side(
        x,
        |x| exp_m1_high_word(x) <= 0x3fd6_2e42,
        |x| {
            let core = exp_m1_core(x);
            if exp_m1_high_word(x) < 0x3c90_0000 { x } else { core }
        },
        exp_m1,
    )
}

/// The high word of |x|'s bits, which libm's `expm1` branches on.
#[inline(always)]
fn exp_m1_high_word(x: f64) -> u32 {
    ((x.to_bits() >> 32) & 0x7fff_ffff) as u32
}

/// libm 0.2.16's `expm1` for 2⁻⁵⁴ ≤ |x| ≤ ½ ln 2 (src/math/expm1.rs, k = 0),
/// the same constants and operations in the same order.
#[inline(always)]
fn exp_m1_core(x: f64) -> f64 {
    const Q1: f64 = f64::from_bits(0xbfa1_1111_1111_10f4);
    const Q2: f64 = f64::from_bits(0x3f5a_01a0_19fe_5585);
    const Q3: f64 = f64::from_bits(0xbf14_ce19_9eaa_dbb7);
    const Q4: f64 = f64::from_bits(0x3ed0_cfca_86e6_5239);
    const Q5: f64 = f64::from_bits(0xbe8a_fdb7_6e09_c32d);
    let hfx = 0.5 * x;
    let hxs = x * hfx;
    let r1 = 1.0 + hxs * (Q1 + hxs * (Q2 + hxs * (Q3 + hxs * (Q4 + hxs * Q5))));
    let t = 3.0 - r1 * hfx;
    let e = hxs * ((r1 - t) / (6.0 - x * t));
    x - (x * e - hxs)
}

/// Whether `x` is positive and finite (0 < x < ∞), by one integer
/// comparison of its bits: those of the positive finite values are
/// 1 … `f64::MAX`'s, so one less is below `f64::MAX`'s bits exactly for
/// them (+0 wraps around; −0, the negative values, ∞ and NaN lie above).
/// Written as `x > 0.0 && x < f64::INFINITY`, the compiler turns the test
/// into a floating-point class check: a normal and a subnormal range, some
/// sixteen integer instructions.
#[inline(always)]
pub fn positive_and_finite(x: f64) -> bool {
    x.to_bits().wrapping_sub(1) < f64::MAX.to_bits()
}

/// xʸ.
#[inline]
pub fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// The standard normal distribution function Φ(x) = erfc(−x/√2)/2.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile Φ⁻¹(p) for p in [0, 1] (−∞ at 0, +∞ at 1,
/// NaN outside), by Wichura's algorithm AS 241 (Applied Statistics 37,
/// 1988): rational approximations in three ranges of p, within a few units
/// in the last place (about 10⁻¹⁵ relative). The coefficients are written as the paper gives them.
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    // Coefficients of the numerators and denominators, constant term first.
    const CENTRAL: ([f64; 8], [f64; 8]) = (
        [
            3.387_132_872_796_366_608,
            133.141_667_891_784_377_45,
            1_971.590_950_306_551_442_7,
            13_731.693_765_509_461_125,
            45_921.953_931_549_871_457,
            67_265.770_927_008_700_853,
            33_430.575_583_588_128_105,
            2_509.080_928_730_122_672_7,
        ],
        [
            1.0,
            42.313_330_701_600_911_252,
            687.187_007_492_057_908_3,
            5_394.196_021_424_751_107_7,
            21_213.794_301_586_595_867,
            39_307.895_800_092_710_61,
            28_729.085_735_721_942_674,
            5_226.495_278_852_854_561,
        ],
    );
    const NEAR: ([f64; 8], [f64; 8]) = (
        [
            1.423_437_110_749_683_577_34,
            4.630_337_846_156_545_295_9,
            5.769_497_221_460_691_405_5,
            3.647_848_324_763_204_605_04,
            1.270_458_252_452_368_382_58,
            0.241_780_725_177_450_611_77,
            0.022_723_844_989_269_184_583_3,
            7.745_450_142_783_414_076_4e-4,
        ],
        [
            1.0,
            2.053_191_626_637_758_821_87,
            1.676_384_830_183_803_849_4,
            0.689_767_334_985_100_004_55,
            0.148_103_976_427_480_074_59,
            0.015_198_666_563_616_457_196_6,
            5.475_938_084_995_344_946e-4,
            1.050_750_071_644_416_843_24e-9,
        ],
    );
    const FAR: ([f64; 8], [f64; 8]) = (
        [
            6.657_904_643_501_103_777_2,
            5.463_784_911_164_114_369_9,
            1.784_826_539_917_291_335_8,
            0.296_560_571_828_504_891_23,
            0.026_532_189_526_576_123_093,
            1.242_660_947_388_078_438_6e-3,
            2.711_555_568_743_487_578_15e-5,
            2.010_334_399_292_288_132_65e-7,
        ],
        [
            1.0,
            0.599_832_206_555_887_937_69,
            0.136_929_880_922_735_805_31,
            0.014_875_361_290_850_614_852_5,
            7.868_691_311_456_132_591e-4,
            1.846_318_317_510_054_681_8e-5,
            1.421_511_758_316_445_888_7e-7,
            2.044_263_103_389_939_785_64e-15,
        ],
    );
    fn ratio((num, den): &([f64; 8], [f64; 8]), r: f64) -> f64 {
        let horner = |c: &[f64; 8]| c.iter().rev().fold(0.0, |acc, &c| acc * r + c);
        horner(num) / horner(den)
    }
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        return q * ratio(&CENTRAL, 0.180_625 - q * q);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    if tail == 0.0 {
        return if q < 0.0 { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    let r = (-ln(tail)).sqrt();
    let z = if r <= 5.0 { ratio(&NEAR, r - 1.6) } else { ratio(&FAR, r - 5.0) };
    if q < 0.0 { -z } else { z }
}

#[cfg(test)]
// Tests compare with the platform's functions and state expectations in them.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod tests {
    use super::*;

    /// Pinned results: a change of the `libm` version that moves a bit is
    /// seen here before it changes a sweep.
    #[test]
    fn pinned_bits() {
        assert_eq!(exp(-1.0).to_bits(), 0x3fd7_8b56_362c_ef38);
        assert_eq!(ln(0.5).to_bits(), 0xbfe6_2e42_fefa_39ef);
        assert_eq!(ln_1p(0.03).to_bits(), 0x3f9e_44a9_a3be_d663);
        assert_eq!(pow(1.21, 1.0 / 3.0).to_bits(), 0x3ff1_0cb4_ee57_500b);
        assert_eq!(exp_m1(0.001).to_bits(), 0x3f50_6466_dfb8_cf3a);
        assert_eq!(normal_quantile(0.975).to_bits(), 0x3fff_5c03_31ee_ff82);
    }

    /// `positive_and_finite` is `0 < x < ∞` on the edges (±0, the least
    /// subnormal, the largest finite value, ∞, NaN of either sign) and on
    /// random bit patterns.
    #[test]
    fn positive_and_finite_is_the_two_comparisons() {
        use rand::{Rng, SeedableRng};
        let plainly = |x: f64| x > 0.0 && x < f64::INFINITY;
        let edges = [
            0.0,
            -0.0,
            f64::from_bits(1),
            -f64::from_bits(1),
            f64::MIN_POSITIVE,
            f64::MAX,
            -f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            1.0,
            -1.0,
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for x in edges.into_iter().chain((0..100_000).map(|_| f64::from_bits(rng.random()))) {
            assert_eq!(positive_and_finite(x), plainly(x), "{x:e} ({:#018x})", x.to_bits());
        }
    }

    /// The side-by-side ln(1 + x) is libm's bit for bit: random values in
    /// and around its range, its edges one ulp either way, and values that
    /// send a whole batch to libm.
    #[test]
    fn ln_1p_each_is_ln_1p_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let up = |v: f64| f64::from_bits(v.to_bits() + 1);
        let down = |v: f64| f64::from_bits(v.to_bits() - 1);
        let lower = f64::from_bits(0xbfd2_bec4_ffff_ffff);
        let upper = f64::from_bits(0x3fda_827a_0000_0000);
        let tiny = f64::from_bits(0x3ca0_0000_0000_0000);
        let mut values = vec![
            0.0,
            -0.0,
            lower,
            up(lower),
            down(lower),
            upper,
            up(upper),
            down(upper),
            tiny,
            up(tiny),
            down(tiny),
            -tiny,
            -up(tiny),
            -down(tiny),
            -1.0,
            -1.5,
            1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
        ];
        for _ in 0..400_000 {
            let v = match rng.random_range(0..4) {
                0 => rng.random_range(-0.3..0.42),
                1 => rng.random_range(-0.05..0.05),
                2 => rng.random_range(-1.0..2.0),
                _ => f64::from_bits(rng.random::<u64>()),
            };
            values.push(v);
        }
        let mut in_lanes = 0;
        for chunk in values.chunks_exact(4) {
            let batch: [f64; 4] = chunk.try_into().unwrap();
            in_lanes += usize::from(batch.iter().all(|&v| ln_1p_unreduced(v)));
            for (v, got) in batch.iter().zip(ln_1p_each(batch)) {
                assert_eq!(got.to_bits(), ln_1p(*v).to_bits(), "ln_1p({v:e})");
            }
        }
        // Every value of the range itself, one at a time, through the core.
        for v in values.iter().copied().filter(|&v| ln_1p_unreduced(v)) {
            assert_eq!(ln_1p_core(v).to_bits(), libm::log1p(v).to_bits(), "core ln_1p({v:e})");
        }
        assert!(in_lanes > 5_000, "the side-by-side path was taken {in_lanes} times");
        assert!(!ln_1p_unreduced(-0.0) && !ln_1p_unreduced(f64::NAN) && !ln_1p_unreduced(up(lower)));
        assert!(ln_1p_unreduced(lower) && ln_1p_unreduced(down(upper)) && !ln_1p_unreduced(upper));
    }

    /// The side-by-side ln and eˣ − 1 are libm's bit for bit: random values
    /// in and around their ranges, edges one ulp either way, special values.
    #[test]
    fn ln_each_and_exp_m1_each_are_libm_bit_for_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let up = |v: f64| f64::from_bits(v.to_bits() + 1);
        let down = |v: f64| f64::from_bits(v.to_bits() - 1);
        let half_ln2 = f64::from_bits(0x3fd6_2e42_ffff_ffff);
        let tiny = f64::from_bits(0x3c90_0000_0000_0000);
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            up(1.0),
            down(1.0),
            f64::MIN_POSITIVE,
            up(f64::MIN_POSITIVE),
            down(f64::MIN_POSITIVE),
            f64::MAX,
            half_ln2,
            up(half_ln2),
            down(half_ln2),
            -half_ln2,
            -up(half_ln2),
            tiny,
            up(tiny),
            down(tiny),
            -tiny,
            -down(tiny),
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-310,
        ];
        for _ in 0..400_000 {
            let v = match rng.random_range(0..5) {
                0 => rng.random_range(0.2..5.0),
                1 => rng.random_range(-0.35..0.35),
                2 => rng.random_range(-1e-3..1e-3),
                3 => rng.random_range(1e-300..1e300),
                _ => f64::from_bits(rng.random::<u64>()),
            };
            values.push(v);
        }
        // The edges in groups whose other values are in range, so that the
        // group's path is decided by the edge value.
        for edge in [half_ln2, up(half_ln2), -half_ln2, -up(half_ln2), tiny, down(tiny), -down(tiny), 0.0, -0.0] {
            values.extend([edge, 0.1, -0.2, 0.3]);
        }
        for edge in [f64::MIN_POSITIVE, down(f64::MIN_POSITIVE), 1.0, f64::MAX, f64::INFINITY, 0.0] {
            values.extend([edge, 0.5, 2.0, 1e10]);
        }
        // Just past the high word `expm1` reduces from.
        for _ in 0..1_000 {
            let word: u64 = rng.random_range(0x3fd6_2e43..0x3fd6_2e50);
            values.extend([f64::from_bits((word << 32) | rng.random::<u32>() as u64), 0.1, 0.2, -0.1]);
        }
        let (mut ln_lanes, mut exp_m1_lanes) = (0, 0);
        for chunk in values.chunks_exact(4) {
            let batch: [f64; 4] = chunk.try_into().unwrap();
            ln_lanes += usize::from(batch.iter().all(|&v| ln_usual(v)));
            exp_m1_lanes += usize::from(batch.iter().all(|&v| exp_m1_high_word(v) <= 0x3fd6_2e42));
            for (v, got) in batch.iter().zip(ln_each(batch)) {
                assert_eq!(got.to_bits(), ln(*v).to_bits(), "ln({v:e})");
            }
            for (v, got) in batch.iter().zip(exp_m1_each(batch)) {
                assert_eq!(got.to_bits(), exp_m1(*v).to_bits(), "exp_m1({v:e})");
            }
        }
        // Every value of the ranges, one at a time, through the cores.
        for &v in &values {
            if ln_usual(v) {
                assert_eq!(ln_core(v).to_bits(), libm::log(v).to_bits(), "core ln({v:e})");
            }
            let word = exp_m1_high_word(v);
            if (0x3c90_0000..=0x3fd6_2e42).contains(&word) {
                assert_eq!(exp_m1_core(v).to_bits(), libm::expm1(v).to_bits(), "core exp_m1({v:e})");
            }
        }
        assert!(ln_lanes > 5_000 && exp_m1_lanes > 5_000, "side by side: ln {ln_lanes}, exp_m1 {exp_m1_lanes}");
        assert!(ln_usual(1.0) && ln_usual(f64::MIN_POSITIVE) && !ln_usual(down(f64::MIN_POSITIVE)));
        assert!(!ln_usual(0.0) && !ln_usual(-1.0) && !ln_usual(f64::INFINITY) && !ln_usual(f64::NAN));
    }

    #[test]
    fn special_values() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln_1p(0.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(normal_quantile(0.5), 0.0);
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(1.5).is_nan() && normal_quantile(f64::NAN).is_nan());
        assert_eq!(normal_cdf(0.0), 0.5);
    }

    /// Within a few units in the last place of the platform's functions and
    /// close to the statistics crate's normal distribution (whose tails are
    /// less accurate: Φ(−4.89) is off by 10⁻¹⁰ relative there, and right
    /// here), over their ranges in the chain; the quantile inverts the
    /// distribution function.
    #[test]
    fn agree_with_the_platform_and_the_statistics_crate() {
        use statrs::distribution::{ContinuousCDF, Normal};
        let close = |a: f64, b: f64, tolerance: f64| (a - b).abs() <= tolerance * b.abs().max(f64::MIN_POSITIVE);
        let n = Normal::standard();
        let mut x = 0.123_456_789_f64;
        for _ in 0..20_000 {
            x = (x * 9_301.0 + 0.497).fract();
            let wide = 40.0 * x - 20.0;
            assert!(close(exp(wide), wide.exp(), 4e-16), "exp({wide})");
            assert!(close(ln(x * 1e6), (x * 1e6).ln(), 4e-16), "ln({})", x * 1e6);
            assert!(close(ln_1p(x - 0.5), (x - 0.5).ln_1p(), 4e-16), "ln_1p({})", x - 0.5);
            assert!(close(pow(0.2 + 2.0 * x, 1.0 / 7.0), (0.2 + 2.0 * x).powf(1.0 / 7.0), 4e-16));
            assert!(close(exp_m1(x - 0.5), (x - 0.5).exp_m1(), 4e-16), "exp_m1({})", x - 0.5);
            let z = 16.0 * x - 8.0;
            assert!(close(normal_cdf(z), n.cdf(z), 1e-9), "Φ({z})");
            let p = x.clamp(1e-300, 1.0 - 1e-16);
            assert!(close(normal_quantile(p), n.inverse_cdf(p), 1e-13), "Φ⁻¹({p})");
            if (0.001..0.999).contains(&p) {
                assert!(close(normal_cdf(normal_quantile(p)), p, 1e-14), "Φ(Φ⁻¹({p}))");
            }
        }
        // Values from Python's statistics.NormalDist and math.erfc.
        for (p, z) in
            [(0.975, 1.959_963_984_540_053_6), (1e-10, -6.361_340_902_404_056), (0.9, 1.281_551_565_544_600_8)]
        {
            assert!(close(normal_quantile(p), z, 1e-15), "Φ⁻¹({p}) = {}", normal_quantile(p));
        }
        assert!(close(normal_cdf(-4.890_524_983_158_684), 5.028_369_640_247_425e-7, 1e-15));
    }
}
